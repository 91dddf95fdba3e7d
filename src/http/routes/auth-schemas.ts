import { z } from 'zod'

/** POST /auth/register. What an email or password may be is AuthService's to say. */
export const registerBody = z.object({
  email: z.string({ error: 'email must be a string' }),
  password: z.string({ error: 'password must be a string' }),
})

/**
 * A login field that is not text matches no account, so it is answered as a wrong one
 * (401 BAD_CREDENTIALS, never 400: a probe learns nothing from the shape): it reads as empty,
 * which AuthService answers the way it answers any unknown email or wrong password.
 */
const credential = z.string().catch('')

/** POST /auth/login. */
export const loginBody = z.object({ email: credential, password: credential })
