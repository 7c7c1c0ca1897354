/**
 * The error shape every folder uses. Each folder keeps its own catalogue (`ans/errors.ts`,
 * `ca/errors.ts`, ...) of stable codes; the HTTP layer renders any `AnsError` as RFC 9457
 * problem+json. The client-facing `detail` is kept apart from the internal `cause`, which is
 * logged, never sent.
 */
export class AnsError extends Error {
  readonly code: string;
  readonly statusCode: number;
  readonly extra: Readonly<Record<string, unknown>> | undefined;

  constructor(
    code: string,
    statusCode: number,
    detail: string,
    options?: { cause?: unknown; extra?: Record<string, unknown> },
  ) {
    super(detail, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AnsError';
    this.code = code;
    this.statusCode = statusCode;
    this.extra = options?.extra;
  }
}

export type ErrorFactory<A extends unknown[]> = ((...args: A) => AnsError) & {
  readonly code: string;
  readonly statusCode: number;
};

/**
 * Declares one catalogue entry: `defineError('ANS_ERR_LABEL_TAKEN', 409, (l: string) => ...)`.
 * The factory carries its code so callers and tests can match without string literals.
 */
export function defineError<A extends unknown[]>(
  code: string,
  statusCode: number,
  message: (...args: A) => string,
): ErrorFactory<A> {
  const make = (...args: A) => new AnsError(code, statusCode, message(...args));
  return Object.assign(make, { code, statusCode });
}

export function isAnsError(e: unknown): e is AnsError {
  return e instanceof AnsError;
}
