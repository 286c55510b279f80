/*
 * REST Hooks at Tiledesk's paths, with the signed-in client's token. The client has no method for
 * them (Tiledesk's Zapier and Make apps call these paths), so they go through its request plumbing,
 * which takes only a 200 with a body as a success: as Tiledesk answers (routes/subscription.js).
 */
const { request, assert } = require("./calls");

module.exports = [
  {
    name: "subscriptions.create",
    async run(ctx) {
      const created = await request(ctx, "POST", `/${ctx.projectId}/subscriptions`, {
        event: "request.create",
        target: ctx.target,
      });
      assert(created.secret && created.secret.startsWith("whsec_"), "expected the full secret");
      assert(created.event === "request.create" && created.id_project === ctx.projectId, "unexpected subscription");
      ctx.subscription = created;
      return { id: created.id };
    },
  },
  {
    name: "subscriptions.create_again",
    async run(ctx) {
      const again = await request(ctx, "POST", `/${ctx.projectId}/subscriptions`, {
        event: "request.create",
        target: ctx.target,
      });
      assert(again.id === ctx.subscription.id, "expected the existing subscription");
      assert(again.secret !== ctx.subscription.secret, "expected its secret masked");
      return { id: again.id };
    },
  },
  {
    name: "subscriptions.list",
    async run(ctx) {
      const listed = await request(ctx, "GET", `/${ctx.projectId}/subscriptions`);
      assert(Array.isArray(listed), "expected a plain array");
      assert(!ctx.subscription || listed.some((row) => row.id === ctx.subscription.id), "expected the new one listed");
      return { count: listed.length };
    },
  },
  {
    name: "subscriptions.update",
    async run(ctx) {
      const updated = await request(ctx, "PUT", `/${ctx.projectId}/subscriptions/${ctx.subscription.id}`, {
        target: `${ctx.target}?v=2`,
      });
      assert(updated.target === `${ctx.target}?v=2` && updated.event === "request.create", "expected a partial update");
      return { target: updated.target };
    },
  },
  {
    name: "subscriptions.history",
    async run(ctx) {
      const history = await request(ctx, "GET", `/${ctx.projectId}/subscriptions/history?page=0`);
      assert(Array.isArray(history), "expected a plain array");
      return { count: history.length };
    },
  },
  {
    name: "subscriptions.delete",
    async run(ctx) {
      const deleted = await request(ctx, "DELETE", `/${ctx.projectId}/subscriptions/${ctx.subscription.id}`);
      assert(deleted.id === ctx.subscription.id, "expected the deleted subscription");
      return { id: deleted.id };
    },
  },
];
