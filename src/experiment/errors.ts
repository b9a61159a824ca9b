// A request an experiment cannot carry out as given (a missing eps, a share out of range, an output
// path that cannot be written): reported before any work starts, naming the option at fault, so
// that the CLI can exit with its usage code instead of failing minutes later.
export class ExperimentError extends Error {
  constructor(
    message: string,
    /** The option at fault, as the CLI names it (e.g. '--eps'). */
    readonly option?: string,
  ) {
    super(message);
    this.name = 'ExperimentError';
  }
}
