"""Several nodes behind one name: a cluster on Redis.

With `--cluster redis://HOST:PORT/DB` the supervisor of every node connects
to one Redis, which holds what the nodes share — users, routes, the token
key (`stores`), a directory of which node owns each live stream
(`directory`), the nodes themselves — and carries what they tell each other
(pub/sub: store changes, requests between nodes, `rpc`). A node asked for
a stream another node owns pulls it from that node over RTSP with the
cluster's relay credential (the shard's route-pull machinery).

Only the supervisor imports this package's Redis modules; `settings` is
read by `hub.config` and imports nothing.
"""
