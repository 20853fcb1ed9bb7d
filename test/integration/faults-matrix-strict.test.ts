/**
 * docs/design.md rule 7 ("nothing is lost on a fault") for the strict authorizer: every AWS
 * call failed in every way (test/support/fault-matrix.ts).
 */
import { faultMatrix } from '../support/fault-matrix.js'

faultMatrix('strict')
