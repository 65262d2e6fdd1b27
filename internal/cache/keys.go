package cache

// AgentVersionKey is the spec's cache key of a channel's latest agent version
// (agent:version:<channel>, 5 min): the heartbeat reads it, publishing a release drops it.
func AgentVersionKey(channel string) string { return "agent:version:" + channel }
