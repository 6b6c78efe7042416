// @xmpp/resolve imports node:dns for SRV lookups; a browser has none, and the console gives the WebSocket URL itself.
export default {};
