(() => {
  // The Agents Playground's page learns the id of a channel post from the answer to its own POST, but
  // its server forwards the post to the bot as soon as it has answered: a quick reply of the bot can
  // reach the page over the websocket before that answer, and the page then drops it ("Saga error:
  // Invalid conversation id <channel>;messageid=<post>"). Teams shows a person's post before any reply
  // to it, so here a websocket message for a post this page has not learnt yet waits (in order, at most
  // 5 s) while the page's own post is in flight. Nothing is dropped or changed.
  const NativeWebSocket = window.WebSocket;
  const known = new Set();
  let inFlight = 0;
  const sockets = [];
  const learn = (text) => {
    try { const id = JSON.parse(text).postConversationId; if (id) known.add(id); } catch (e) {}
  };
  const open = XMLHttpRequest.prototype.open, send = XMLHttpRequest.prototype.send;
  XMLHttpRequest.prototype.open = function (method, url) {
    this.__e2ePost = method.toUpperCase() === "POST" && /\/_conversation\/v1\/conversations\/[^/]+\/messages$/.test(String(url));
    return open.apply(this, arguments);
  };
  XMLHttpRequest.prototype.send = function () {
    if (this.__e2ePost) {
      inFlight += 1;
      this.addEventListener("loadend", () => {
        inFlight -= 1;
        learn(this.responseText);
        // After the page's own handlers of this answer (and their promise callbacks) have run.
        setTimeout(() => sockets.forEach((s) => s.__e2eFlush()), 0);
      });
    }
    return send.apply(this, arguments);
  };
  class HeldWebSocket extends NativeWebSocket {
    constructor(...args) {
      super(...args);
      const queue = [];  // [event data, since]
      let timer = null;
      const unknownPost = (data) => {
        try {
          const m = JSON.parse(data);
          const post = m.message && m.message.postConversationId;
          if (post) known.add(post);  // a thread the bot started: the page learns it from this message
          const id = String(m.actionConversationId || "");
          return id.includes(";messageid=") && !known.has(id) ? id : null;
        } catch (e) { return null; }
      };
      this.__e2eFlush = () => {
        while (queue.length) {
          const [data, since] = queue[0];
          const id = unknownPost(data);
          if (id && inFlight > 0 && Date.now() - since < 5000) break;
          queue.shift();
          if (id) console.warn(`[e2e] delivered a message for ${id}, which the page does not know, after ${Date.now() - since} ms`);
          else console.info(`[e2e] held a message for a post for ${Date.now() - since} ms, until the page had shown the post`);
          const released = new MessageEvent("message", { data });
          released.__e2eReleased = true;
          this.dispatchEvent(released);
        }
        clearTimeout(timer);
        timer = queue.length ? setTimeout(this.__e2eFlush, 100) : null;
      };
      this.addEventListener("message", (event) => {
        if (event.__e2eReleased) return;
        if (queue.length || (unknownPost(event.data) && inFlight > 0)) {
          event.stopImmediatePropagation();
          queue.push([event.data, Date.now()]);
          this.__e2eFlush();
        }
      });
      sockets.push(this);
    }
  }
  window.WebSocket = HeldWebSocket;
})();
