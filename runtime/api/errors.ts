import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { QuarkError, quarkError, describeProblems, type FieldProblem } from '../core/errors.js';
import { toProblems, StoreUnavailableError } from '../index.js';

function validationProblems(error: FastifyError): FieldProblem[] {
  const context = error.validationContext ?? 'body';
  return toProblems((error.validation ?? []) as never).map((p) => ({ ...p, path: `/${context}${p.path === '/' ? '' : p.path}` }));
}

/** The longest path parameter, in characters as sent: a 200-character name, each character percent-encoded UTF-8. */
export const maxParamLength = 2400;

/**
 * fastify's own routing errors, which reach neither the routes nor `errorHandler`: a
 * path that does not decode (`%ZZ`, an encoded lone surrogate) and a path parameter
 * over `maxParamLength`. The URL itself is not echoed back.
 */
export function frameworkErrorHandler(error: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  void reply.status(400).send({ error: frameworkError(error).toJSON() });
}

function frameworkError(error: FastifyError): QuarkError {
  const invalid = (path: string, problem: string) => quarkError('QUARK_ERR_API_INVALID_REQUEST', `the request is not valid: ${problem}`, { problems: [{ path, message: problem }] }, error);
  if (error.code === 'FST_ERR_MAX_PARAM_LENGTH') return invalid('/params', `a path parameter is longer than ${maxParamLength} characters`);
  if (error.code === 'FST_ERR_BAD_URL') return invalid('/url', 'the path holds a percent-escape that is not UTF-8 text (such as %ZZ or an encoded lone surrogate)');
  return invalid('/url', 'the request cannot be routed');
}

/** Maps every error to `{ error: { code, message, details } }` with the code's HTTP status. */
export function errorHandler(error: FastifyError | Error, request: FastifyRequest, reply: FastifyReply): void {
  let quark: QuarkError;
  const fastifyError = error as FastifyError;
  if (error instanceof QuarkError) {
    quark = error;
  } else if (error instanceof StoreUnavailableError) {
    // the store's own message may name its address: it goes to the log only
    request.log.error({ err: error }, 'the store cannot be reached');
    quark = quarkError('QUARK_ERR_STORE_UNAVAILABLE', 'the store cannot be reached; nothing was changed by this request; retry later');
  } else if (fastifyError.validation) {
    const problems = validationProblems(fastifyError);
    quark = quarkError('QUARK_ERR_API_INVALID_REQUEST', `the request is not valid: ${describeProblems(problems)}`, { problems });
  } else if (fastifyError.statusCode !== undefined && fastifyError.statusCode >= 400 && fastifyError.statusCode < 500) {
    // body parser errors: bad JSON, wrong content type, too large
    quark = quarkError('QUARK_ERR_API_INVALID_REQUEST', `the request is not valid: ${error.message}`, { problems: [{ path: '/body', message: error.message }] });
  } else {
    request.log.error({ err: error }, 'unexpected error');
    quark = quarkError('QUARK_ERR_API_INTERNAL', 'an unexpected error occurred; the runtime log has the details');
  }
  void reply.status(quark.status).send({ error: quark.toJSON() });
}
