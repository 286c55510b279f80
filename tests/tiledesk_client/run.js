#!/usr/bin/env node
/*
 * Tiledesk's own Node.js client (@tiledesk/tiledesk-client, pinned in package.json) against a running
 * tiledesk-hooks server, used as a Tiledesk user uses it.
 *
 *   TILEDESK_API_URL=http://127.0.0.1:8000/v3 TILEDESK_EMAIL=... TILEDESK_PASSWORD=... \
 *   TILEDESK_PROJECT_ID=... TILEDESK_TARGET=https://... node run.js [check ...]
 *
 * With TILEDESK_TOKEN (a JWT, e.g. a delivery's envelope token) instead of an e-mail and a password,
 * the sign-in checks are skipped and the client uses that token.
 *
 * The call-back checks (checks/callbacks.js) act on one conversation of the project:
 * TILEDESK_REQUEST_ID (its request_id), TILEDESK_LEAD_ID (its lead's id), TILEDESK_BOT_ID (a bot
 * of the project).
 *
 * Each module of checks/ exports a list of named checks, run in order; they share a context
 * (`ctx.token`, `ctx.client`, ...) that earlier checks fill in. One JSON line is printed per check
 * (`{"check", "ok", ...}`); the exit status is 1 as soon as one fails. With arguments, only the
 * checks whose names start with one of them run (the sign-in always does: the others need it).
 */
const MODULES = ["./checks/signin", "./checks/subscriptions", "./checks/callbacks"];

function env(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is required`);
  }
  return value;
}

async function main() {
  const presetToken = process.env.TILEDESK_TOKEN;
  const ctx = {
    apiUrl: env("TILEDESK_API_URL"),
    presetToken,
    email: presetToken ? undefined : env("TILEDESK_EMAIL"),
    password: presetToken ? undefined : env("TILEDESK_PASSWORD"),
    projectId: env("TILEDESK_PROJECT_ID"),
    target: env("TILEDESK_TARGET"),
    requestId: process.env.TILEDESK_REQUEST_ID,
    leadId: process.env.TILEDESK_LEAD_ID,
    botId: process.env.TILEDESK_BOT_ID,
  };
  const wanted = process.argv.slice(2);
  const checks = MODULES.flatMap((module) => require(module));
  for (const check of checks) {
    if (wanted.length && !check.always && !wanted.some((prefix) => check.name.startsWith(prefix))) {
      continue;
    }
    try {
      const details = (await check.run(ctx)) || {};
      console.log(JSON.stringify({ check: check.name, ok: true, ...details }));
    } catch (error) {
      const response = error.response || (error.http_response ? error.http_response : undefined);
      console.log(
        JSON.stringify({
          check: check.name,
          ok: false,
          error: String(error.message || error),
          status: response && response.status,
          body: response && response.data,
        })
      );
      process.exit(1);
    }
  }
}

main().catch((error) => {
  console.log(JSON.stringify({ check: "setup", ok: false, error: String(error.message || error) }));
  process.exit(1);
});
