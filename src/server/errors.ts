/** Errors that carry their HTTP status: the API answers them with that status and their one-line message. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** A request the client got wrong (not an image, too large, unknown model, bad parameter): 400. */
export class BadRequest extends HttpError {
  constructor(message: string) {
    super(400, message);
  }
}

/** Every worker is busy and the queue is full: 503, try again shortly. */
export class BusyError extends HttpError {
  constructor(message: string) {
    super(503, message);
  }
}
