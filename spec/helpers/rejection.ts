/** Reading what a promise rejects with, for specs that then check the error's class, code and message. */
import * as assert from 'uvu/assert';

/** The error `promise` rejects with; fails the test if it resolves, or rejects with something that is not an Error. */
export async function rejectionOf(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    assert.instance(error, Error);
    return error as Error;
  }
  throw new assert.Assertion({ message: 'expected a rejection', operator: 'rejects', expects: 'rejection', actual: 'resolved' });
}
