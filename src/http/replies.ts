import { CODES } from '../errors'
import { ByteWriter } from '../queue/bytes'
import { type Job, writeJobMembers } from '../queue/job'

/** Reply bodies shared by several endpoints. */

export const EMPTY_QUEUE_BODY = JSON.stringify({ status: 'ok', code: CODES.empty_queue.code, message: 'empty queue' })
export const SHUTTING_DOWN = 'dispenserd is shutting down'

/** Reused for every reply: uWS copies what `end` is given before it returns. */
const replyWriter = new ByteWriter(64 * 1024)
const JOB_REPLY_START = `{"status":"ok","code":${CODES.ok.code},`

/** `{"status":"ok","code":0, <the job's fields>}`: the answer to a receive that got a job. */
export function jobReply(job: Job): Buffer {
  replyWriter.pos = 0
  replyWriter.ascii(JOB_REPLY_START)
  writeJobMembers(job, replyWriter)
  replyWriter.ascii('}')
  return replyWriter.buf.subarray(0, replyWriter.pos)
}
