// One assertion for the data module's errors: a DataFormatError whose `file` is the file at fault
// and whose message starts with it ("<file>: <problem>") and says what is wrong.
import { expect } from 'chai';

import { DataFormatError } from '../../src/data/index.js';

function check(err: unknown, file: string, fragment: string | RegExp): DataFormatError {
  expect(err).to.be.instanceOf(DataFormatError);
  const e = err as DataFormatError;
  expect(e.file).to.equal(file);
  expect(e.message.startsWith(`${file}: `), e.message).to.equal(true);
  if (typeof fragment === 'string') expect(e.message).to.contain(fragment);
  else expect(e.message).to.match(fragment);
  return e;
}

/** Runs fn, which must throw a DataFormatError naming `file` and containing `fragment`. */
export function expectDataError(fn: () => unknown, file: string, fragment: string | RegExp): DataFormatError {
  try {
    fn();
  } catch (err) {
    return check(err, file, fragment);
  }
  return expect.fail(`expected a DataFormatError about ${String(fragment)}`);
}

/** The same for a promise, which must reject. */
export async function expectDataRejection(
  promise: Promise<unknown>,
  file: string,
  fragment: string | RegExp,
): Promise<DataFormatError> {
  try {
    await promise;
  } catch (err) {
    return check(err, file, fragment);
  }
  return expect.fail(`expected a DataFormatError about ${String(fragment)}`);
}
