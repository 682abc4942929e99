/**
 * Terraform template evaluation for the runtime applier.
 *
 * Terraform reads every string of the synthesised JSON as a template (HCL template syntax):
 *   `${ expr }`  interpolates an expression,
 *   `%{ ... }`   is a directive (if/for),
 *   `$${`        is a literal `${`, and `%%{` a literal `%{`.
 * A `$` or `%` not followed by `{` is literal text.
 *
 * The applier evaluates each string in ONE left-to-right pass: an escape produces its literal text
 * and an interpolation produces its value, and neither is scanned again. (Unescaping first and
 * resolving afterwards would turn a literal `$${x}` into a reference, and resolving first and
 * unescaping afterwards would corrupt a resolved value that happens to contain `$${`.)
 *
 * The only expressions it evaluates are plain references (`type.name.attribute`); anything else
 * (function calls, operators, conditionals, strip markers `~`, directives) throws, naming the text,
 * so a stack can never silently get a value the applier made up.
 */

export type ReferenceResolver = (reference: string) => string;

/** `type.name.attr[.attr…]`, or `data.type.name.attr`; identifiers as HCL allows them (letters, digits, `_`, `-`). */
const REFERENCE = /^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z_][A-Za-z0-9_-]*)+$/;

export class TemplateError extends Error {}

/** Index of the `}` closing an interpolation whose expression starts at `from`, skipping nested braces and quoted strings. */
function closingBrace(text: string, from: number): number {
  let depth = 0;
  let i = from;
  while (i < text.length) {
    const c = text[i];
    if (c === '"') {
      // A quoted string inside the expression: skip to its end (backslash escapes).
      i++;
      while (i < text.length && text[i] !== '"') i += text[i] === "\\" ? 2 : 1;
      if (i >= text.length) break;
    } else if (c === "{") {
      depth++;
    } else if (c === "}") {
      if (depth === 0) return i;
      depth--;
    }
    i++;
  }
  throw new TemplateError(`unterminated interpolation in template: ${JSON.stringify(text.slice(Math.max(0, from - 2), from + 60))}`);
}

function scan(text: string, onReference: (reference: string) => string): string {
  let out = "";
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === "$" && text.startsWith("$${", i)) {
      out += "${";
      i += 3;
    } else if (c === "%" && text.startsWith("%%{", i)) {
      out += "%{";
      i += 3;
    } else if (c === "$" && text[i + 1] === "{") {
      const end = closingBrace(text, i + 2);
      const expr = text.slice(i + 2, end);
      const ref = expr.trim();
      if (!REFERENCE.test(ref)) {
        throw new TemplateError(`cannot evaluate the expression \${${expr}}: the applier evaluates plain references (type.name.attribute) only`);
      }
      out += onReference(ref);
      i = end + 1;
    } else if (c === "%" && text[i + 1] === "{") {
      const end = text.indexOf("}", i);
      throw new TemplateError(`template directive ${text.slice(i, end < 0 ? i + 40 : end + 1)} is not supported by the applier (write %%{ for a literal %{)`);
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** Evaluates a Terraform template string in one pass; `resolve` gets each reference (`type.name.attr`). */
export function evaluateTemplate(text: string, resolve: ReferenceResolver): string {
  return scan(text, resolve);
}

/** The references a template string interpolates (throws on what evaluateTemplate would refuse). */
export function templateReferences(text: string): string[] {
  const refs: string[] = [];
  scan(text, (r) => {
    refs.push(r);
    return "";
  });
  return refs;
}

/** Every reference in every string of a JSON value (keys starting with "//" are cdktf metadata: skipped). */
export function referencesIn(value: unknown): string[] {
  const refs: string[] = [];
  const walk = (v: unknown): void => {
    if (typeof v === "string") refs.push(...templateReferences(v));
    else if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === "object") {
      for (const [k, x] of Object.entries(v)) if (!k.startsWith("//")) walk(x);
    }
  };
  walk(value);
  return refs;
}

/** Deep copy of a JSON value with every string evaluated as a template (keys starting with "//" dropped). */
export function evaluateDeep<T>(value: T, resolve: ReferenceResolver): T {
  const walk = (v: unknown): unknown => {
    if (typeof v === "string") return evaluateTemplate(v, resolve);
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === "object") {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) if (!k.startsWith("//")) out[k] = walk(x);
      return out;
    }
    return v;
  };
  return walk(value) as T;
}

/** The resource address a reference points at: `docker_image.x.image_id` → `docker_image.x`; data sources keep `data.`. */
export function referencedAddress(reference: string): string {
  const parts = reference.split(".");
  return parts[0] === "data" ? parts.slice(0, 3).join(".") : parts.slice(0, 2).join(".");
}
