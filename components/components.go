// Package components registers every built-in component. Import it for its
// side effects, as database/sql drivers are imported:
//
//	import _ "github.com/mdpio/mdp/components"
package components

import (
	_ "github.com/mdpio/mdp/operator/bars"      // operator.bars
	_ "github.com/mdpio/mdp/operator/buffer"    // operator.buffer
	_ "github.com/mdpio/mdp/operator/dedupe"    // operator.deduplicate
	_ "github.com/mdpio/mdp/operator/features"  // operator.features
	_ "github.com/mdpio/mdp/operator/filter"    // operator.filter
	_ "github.com/mdpio/mdp/operator/join"      // operator.join
	_ "github.com/mdpio/mdp/operator/mapop"     // operator.map
	_ "github.com/mdpio/mdp/operator/options"   // operator.options_chain
	_ "github.com/mdpio/mdp/operator/partition" // operator.hash_partition
	_ "github.com/mdpio/mdp/operator/quality"   // operator.quality
	_ "github.com/mdpio/mdp/operator/resample"  // operator.resample_ohlc
	_ "github.com/mdpio/mdp/operator/router"    // operator.router
	_ "github.com/mdpio/mdp/operator/throttle"  // operator.throttle
	_ "github.com/mdpio/mdp/operator/vwap"      // operator.vwap
	_ "github.com/mdpio/mdp/operator/window"    // operator.window, operator.tumbling_window
	_ "github.com/mdpio/mdp/sink/checksum"      // sink.checksum
	_ "github.com/mdpio/mdp/sink/file"          // sink.file
	_ "github.com/mdpio/mdp/sink/kafka"         // sink.kafka
	_ "github.com/mdpio/mdp/sink/mqtt"          // sink.mqtt
	_ "github.com/mdpio/mdp/sink/nats"          // sink.nats
	_ "github.com/mdpio/mdp/sink/null"          // sink.null
	_ "github.com/mdpio/mdp/sink/parquet"       // sink.parquet
	_ "github.com/mdpio/mdp/sink/postgres"      // sink.postgres, sink.timescale, sink.store
	_ "github.com/mdpio/mdp/sink/rabbitmq"      // sink.rabbitmq
	_ "github.com/mdpio/mdp/sink/redis"         // sink.redis
	_ "github.com/mdpio/mdp/sink/sqlite"        // sink.sqlite
	_ "github.com/mdpio/mdp/sink/stdout"        // sink.stdout
	_ "github.com/mdpio/mdp/source/ibkr"        // provider.ibkr (provider.ibkr.stream)
	_ "github.com/mdpio/mdp/source/kafka"       // provider.kafka
	_ "github.com/mdpio/mdp/source/mqtt"        // provider.mqtt
	_ "github.com/mdpio/mdp/source/nats"        // provider.nats
	_ "github.com/mdpio/mdp/source/rabbitmq"    // provider.rabbitmq
	_ "github.com/mdpio/mdp/source/redis"       // provider.redis
	_ "github.com/mdpio/mdp/source/replay"      // provider.replay
	_ "github.com/mdpio/mdp/source/synthetic"   // provider.synthetic
	_ "github.com/mdpio/mdp/source/websocket"   // provider.websocket
)
