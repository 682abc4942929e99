#!/usr/bin/python3
"""Docker healthcheck of an HTTP endpoint on this container: exit 0 on a 2xx answer within 3 s.

usage: http_check.py URL
"""
import sys
import urllib.request


def main(argv):
    if len(argv) != 1:
        print("usage: http_check.py URL", file=sys.stderr)
        return 2
    try:
        with urllib.request.urlopen(argv[0], timeout=3) as res:
            return 0 if 200 <= res.status < 300 else 1
    except OSError as e:
        print("%s: %s" % (argv[0], e), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
