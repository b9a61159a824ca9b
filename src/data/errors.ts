// The one error type for data files that cannot be read: it names the file, so a CLI user knows which.
export class DataFormatError extends Error {
  readonly code = 'NFP_BAD_DATA';

  /** `file` is a path, or a description such as "image buffer (123 bytes)" for in-memory input. */
  constructor(
    readonly file: string,
    problem: string,
  ) {
    super(`${file}: ${problem}`);
    this.name = 'DataFormatError';
  }
}
