// The ACP wire types, from the official SDK (`@agentclientprotocol/sdk`, an ES module; types
// only, erased at compile time, so the packaged extension has no runtime dependency). Every
// other module imports them from here.
export type * from "@agentclientprotocol/sdk" with { "resolution-mode": "import" };
