/**
 * The lane scripts by name, gathered from lua/: one file for each kind of operation (what each
 * script is given and returns is said beside it there), all beginning with lua/prelude.ts. The
 * store runs them by name (RedisStore.laneCall); each returns a flat array (Lua tables cannot hold
 * nil).
 */
import { LEASE_SCRIPTS } from './lua/leases'
import { OPERATOR_SCRIPTS } from './lua/operators'
import { READ_SCRIPTS } from './lua/reads'
import { SCHEDULE_SCRIPTS } from './lua/schedule'
import { SWEEP_SCRIPTS } from './lua/sweep'
import { TAKE_SCRIPTS } from './lua/take'
import { UNIQUE_SCRIPTS } from './lua/unique'

export const LANE_SCRIPTS = { ...SCHEDULE_SCRIPTS, ...UNIQUE_SCRIPTS, ...TAKE_SCRIPTS, ...LEASE_SCRIPTS, ...OPERATOR_SCRIPTS, ...READ_SCRIPTS, ...SWEEP_SCRIPTS } as const

export type LaneScript = keyof typeof LANE_SCRIPTS
