import { param, type Route, requestOrigin } from '../adapters/http.js'
import { callerClaims } from '../authorizer/context.js'
import { changePassword, type PasswordChangeDeps } from '../core/password-change.js'

export type PasswordDeps = PasswordChangeDeps

/**
 * `POST /me/password`, behind the authorizer: `current_password` and
 * `new_password` (form or JSON). 204; every other session of the caller ends.
 */
export const passwordRoute: Route<PasswordDeps> = async (request, deps) => {
  const caller = callerClaims(request.authorizer)
  await changePassword(
    deps,
    { sub: caller.sub, sid: caller.sid, clientId: caller.client_id },
    {
      currentPassword: param(request, 'current_password'),
      newPassword: param(request, 'new_password'),
    },
    requestOrigin(request),
  )
  return { status: 204 }
}
