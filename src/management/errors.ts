/**
 * RabbitMQ's error bodies: `{"error": <kind>, "reason": <text>}` with the status codes
 * rabbitmq_management uses. Tools read `reason` (rabbitmqadmin, the nagios plugins).
 */
export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly error: string,
    readonly reason: string,
  ) {
    super(reason);
  }

  body(): { error: string; reason: string } {
    return { error: this.error, reason: this.reason };
  }
}

/** 404 for a missing object (vhost, queue, exchange, connection, ...). */
export function notFound(): ApiError {
  return new ApiError(404, 'Object Not Found', 'Not Found');
}

export function badRequest(reason: string): ApiError {
  return new ApiError(400, 'bad_request', reason);
}

/** 401 with the realm challenge (the header is added by the server for every 401). */
export function notAuthorised(reason: string): ApiError {
  return new ApiError(401, 'not_authorised', reason);
}

export const AUTH_CHALLENGE = 'Basic realm="RabbitMQ Management"';
