// Preloaded into the Agents Playground (NODE_OPTIONS=-r <this file>): every TCP listen() that
// names no host, or a wildcard host, binds 127.0.0.1 instead, so the simulator (which is also the
// bot's unauthenticated Bot Connector) is never reachable from the network.
"use strict";
const net = require("net");

const LOOPBACK = "127.0.0.1";
const WILDCARDS = new Set([undefined, null, "", "0.0.0.0", "::", "::0"]);
const original = net.Server.prototype.listen;

function isPort(value) {
  return typeof value === "number" || (typeof value === "string" && /^\d+$/.test(value));
}

net.Server.prototype.listen = function listen(...args) {
  const first = args[0];
  if (first !== null && typeof first === "object") {
    // listen({port, host, ...}); handles, fds and unix sockets are left alone.
    const plainOptions = Object.getPrototypeOf(first) === Object.prototype;
    const elsewhere = first.path !== undefined || first.handle !== undefined || first._handle !== undefined || first.fd !== undefined;
    if (plainOptions && !elsewhere && WILDCARDS.has(first.host)) {
      args[0] = { ...first, host: LOOPBACK };
    }
  } else if (isPort(first) || first === undefined || typeof first === "function") {
    // listen(), listen(cb), listen(port[, host][, backlog][, cb])
    if (first === undefined) {
      args[0] = 0;
    } else if (typeof first === "function") {
      args.unshift(0);
    }
    if (typeof args[1] === "string" || (args.length > 1 && args[1] == null)) {
      if (WILDCARDS.has(args[1])) {
        args[1] = LOOPBACK;
      }
    } else {
      args.splice(1, 0, LOOPBACK);
    }
  }
  return original.apply(this, args);
};
