// What a decision on a run must say: approving may carry a comment, rejecting must say why. The API caps comments
// at 2000 characters; checking here answers before a round trip.
import { z } from 'zod'

export const MAX_COMMENT = 2000
const tooLong = `At most ${MAX_COMMENT} characters.`

export const decisionSchema = z.discriminatedUnion('decision', [
  z.object({ decision: z.literal('approve'), comment: z.string().trim().max(MAX_COMMENT, tooLong) }),
  z.object({
    decision: z.literal('reject'),
    comment: z.string().trim().min(1, 'Say why the run is rejected: the requester reads it.').max(MAX_COMMENT, tooLong),
  }),
])
export type DecisionValues = z.input<typeof decisionSchema>

export const cancelSchema = z.object({ reason: z.string().trim().max(MAX_COMMENT, tooLong) })
export type CancelValues = z.input<typeof cancelSchema>
