/*
 * The client's callback API as promises, and a way to reach paths the client has no method for
 * through its own HTTP plumbing (TiledeskClient.myrequest: axios, `Authorization` as the client
 * sends it, and its rule that only a 200 with a body is a success).
 */
const { TiledeskClient } = require("@tiledesk/tiledesk-client");

function promised(call) {
  return new Promise((resolve, reject) => {
    call((error, result) => (error ? reject(error) : resolve(result)));
  });
}

function request(ctx, method, path, json) {
  return promised((callback) =>
    TiledeskClient.myrequest(
      {
        url: `${ctx.apiUrl}${path}`,
        method,
        headers: { "Content-Type": "application/json", Authorization: ctx.client.jwt_token },
        json,
      },
      callback,
      false
    )
  );
}

function assert(condition, message) {
  if (!condition) {
    throw new Error(message);
  }
}

module.exports = { TiledeskClient, promised, request, assert };
