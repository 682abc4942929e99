/** An operation failed, or was refused before it ran: printed as one line, exit 1. */
export class OperationError extends Error {}

/** An argument is refused before anything runs in a container. */
export class ArgumentError extends OperationError {}
