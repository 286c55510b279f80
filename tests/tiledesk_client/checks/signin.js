/*
 * Signing in as Tiledesk's client does (TiledeskClient.authEmailPassword: POST {APIURL}/auth/signin),
 * then the client every later check uses (`ctx.client`), made with that token or TILEDESK_TOKEN.
 */
const { TiledeskClient, promised, assert } = require("./calls");

const APIKEY = "__APIKEY__"; // required by the client, not used by the server

module.exports = [
  {
    name: "signin.wrong_password",
    async run(ctx) {
      if (ctx.presetToken) {
        return { skipped: "TILEDESK_TOKEN given" };
      }
      try {
        await promised((callback) =>
          TiledeskClient.authEmailPassword(APIKEY, ctx.email, `${ctx.password}-wrong`, { APIURL: ctx.apiUrl }, callback)
        );
      } catch (error) {
        assert(error.response && error.response.status === 401, `expected a 401, got ${error.message}`);
        assert(error.response.data.success === false, "expected {success: false}");
        return { status: 401 };
      }
      throw new Error("a wrong password signed in");
    },
  },
  {
    name: "signin",
    always: true,
    async run(ctx) {
      if (ctx.presetToken) {
        return { skipped: "TILEDESK_TOKEN given" };
      }
      const answer = await promised((callback) =>
        TiledeskClient.authEmailPassword(APIKEY, ctx.email.toUpperCase(), ctx.password, { APIURL: ctx.apiUrl }, callback)
      );
      assert(answer.success === true, "expected success: true");
      assert(answer.token.startsWith("JWT "), "expected a 'JWT ...' token");
      assert(answer.user && answer.user._id && !("password" in answer.user), "expected the user, without password");
      ctx.token = answer.token;
      ctx.user = answer.user;
      return { user: answer.user._id };
    },
  },
  {
    name: "client",
    always: true,
    async run(ctx) {
      const token = ctx.presetToken || ctx.token;
      ctx.client = new TiledeskClient({ APIKEY, projectId: ctx.projectId, token, APIURL: ctx.apiUrl });
      assert(ctx.client.jwt_token.startsWith("JWT "), "the client sends `JWT <token>`");
      return { token: ctx.presetToken ? "TILEDESK_TOKEN" : "signin" };
    },
  },
];
