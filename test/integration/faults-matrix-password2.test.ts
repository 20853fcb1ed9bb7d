/**
 * docs/design.md rule 7 ("nothing is lost on a fault") for the password change,
 * the other half of its cases: every AWS call failed in every way (test/support/fault-matrix.ts).
 */
import { faultMatrix } from '../support/fault-matrix.js'

faultMatrix('password2')
