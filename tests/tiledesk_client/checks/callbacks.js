/*
 * Calling back as a receiver does: the client's own methods on one conversation of the project
 * (TILEDESK_REQUEST_ID, its lead TILEDESK_LEAD_ID, a bot of the project TILEDESK_BOT_ID), with the
 * signed-in user's token or an envelope's (TILEDESK_TOKEN). Each method takes only a 200 with a body
 * for a success (TiledeskClient.myrequest). Run in this order: the conversation is closed last.
 */
const { promised, assert } = require("./calls");

function given(ctx, name) {
  assert(ctx[name], `${name} is required for the call-back checks (see run.js)`);
  return ctx[name];
}

module.exports = [
  {
    name: "callbacks.getAllRequests",
    async run(ctx) {
      const page = await promised((callback) => ctx.client.getAllRequests({ status: "100,200", limit: 10 }, callback));
      assert(page.perPage === 10 && Number.isInteger(page.count), "expected {perPage, count, requests}");
      assert(Array.isArray(page.requests), "expected the requests as an array");
      const found = page.requests.find((row) => row.request_id === given(ctx, "requestId"));
      assert(found, "expected the conversation among the open requests");
      return { count: page.count, status: found.status };
    },
  },
  {
    name: "callbacks.getRequestById",
    async run(ctx) {
      const request = await ctx.client.getRequestById(given(ctx, "requestId"));
      assert(request && request.request_id === ctx.requestId, "expected the conversation by its request_id");
      assert(request.lead && request.lead._id === given(ctx, "leadId"), "expected its lead populated");
      const unknown = await ctx.client.getRequestById(`support-group-${ctx.projectId}-nothing`);
      assert(unknown === null, "expected null for an unknown request (a 404)");
      return { id: request.id, status: request.status };
    },
  },
  {
    name: "callbacks.sendSupportMessage",
    async run(ctx) {
      const message = await ctx.client.sendSupportMessage(given(ctx, "requestId"), {
        text: "Your order left the warehouse today.",
        senderFullname: "Orders desk",
        attributes: { order: 7 },
      });
      assert(message.text === "Your order left the warehouse today.", "expected the message back");
      assert(message.request && message.request.request_id === ctx.requestId, "expected its request populated");
      return { id: message.id, sender: message.sender, senderFullname: message.senderFullname };
    },
  },
  {
    name: "callbacks.updateRequestParticipants",
    async run(ctx) {
      const bot = `bot_${given(ctx, "botId")}`;
      const request = await promised((callback) =>
        ctx.client.updateRequestParticipants(given(ctx, "requestId"), [bot], callback)
      );
      assert(request.participants.length === 1 && request.participants[0] === bot, "expected the bot alone");
      assert(request.status === 200 && request.hasBot === true, "expected it assigned to a bot");
      return { participants: request.participants, status: request.status };
    },
  },
  {
    name: "callbacks.fireEvent",
    async run(ctx) {
      const event = await promised((callback) =>
        ctx.client.fireEvent({ name: "order.shipped", attributes: { order: 7 } }, callback)
      );
      assert(event.name === "order.shipped" && event.attributes.order === 7, "expected the event back");
      return { id: event.id, createdBy: event.createdBy };
    },
  },
  {
    name: "callbacks.getLeadById",
    async run(ctx) {
      const lead = await ctx.client.getLeadById(given(ctx, "leadId"));
      assert(lead._id === ctx.leadId && lead.fullname, "expected the lead");
      return { id: lead._id };
    },
  },
  {
    name: "callbacks.updateLead",
    async run(ctx) {
      const native = { email: "ann@example.org" };
      const lead = await ctx.client.updateLead(given(ctx, "leadId"), native, { tier: "gold" }, null);
      assert(lead.email === "ann@example.org" && lead.attributes.tier === "gold", "expected the lead changed");
      assert(lead.fullname, "expected what the body does not name left as it was");
      return { email: lead.email, attributes: lead.attributes };
    },
  },
  {
    name: "callbacks.getAllBots",
    async run(ctx) {
      const bots = await promised((callback) => ctx.client.getAllBots(callback));
      assert(Array.isArray(bots), "expected a plain array");
      assert(bots.some((bot) => bot._id === given(ctx, "botId")), "expected the project's bot");
      return { count: bots.length };
    },
  },
  {
    name: "callbacks.closeRequest",
    async run(ctx) {
      const request = await ctx.client.closeRequest(given(ctx, "requestId"));
      assert(request.status === 1000 && request.closed_at, "expected the request closed");
      return { status: request.status };
    },
  },
];
