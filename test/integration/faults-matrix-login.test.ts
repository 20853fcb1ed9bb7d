/**
 * docs/design.md rule 7 ("nothing is lost on a fault") for login: every AWS
 * call failed in every way (test/support/fault-matrix.ts).
 */
import { faultMatrix } from '../support/fault-matrix.js'

faultMatrix('login')
