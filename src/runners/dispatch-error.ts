/**
 * Why a Dispatch Job cannot be run as asked: a repository not allowed, a ref that is not a commit,
 * an unknown commit, a missing or malformed Dispatchfile. `transient` when asking again later may
 * work (the repository could not be reached).
 */
export class DispatchError extends Error {
  constructor(
    message: string,
    readonly transient = false,
  ) {
    super(message)
  }
}
