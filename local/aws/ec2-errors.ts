/** An error EC2 answers a whole request with: its code, message and HTTP status. */
export class Ec2ApiError extends Error {
  override readonly name = 'Ec2ApiError';
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}
