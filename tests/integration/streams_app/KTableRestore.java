// A Kafka Streams app for tests/integration/test_compaction.py: a KTable over a compacted topic, kept in
// an in-memory store whose changelog is the source topic itself (topology optimization), so that every
// start restores the table by reading the compacted topic from its beginning.
//
//   java KTableRestore BOOTSTRAP TOPIC APPLICATION_ID STATE_DIR LIVE_KEYS
//
// First run: process the topic until the table holds LIVE_KEYS keys, close (offsets committed).
// Second run: a new instance with an empty store restores it from the topic; once RUNNING, the table is
// printed as "key<TAB>value" lines, then "END".
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StoreQueryParameters;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.state.KeyValueIterator;
import org.apache.kafka.streams.state.QueryableStoreTypes;
import org.apache.kafka.streams.state.ReadOnlyKeyValueStore;
import org.apache.kafka.streams.state.Stores;

public class KTableRestore {
    static KafkaStreams start(String bootstrap, String topic, String appId, Path stateDir) throws Exception {
        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, appId);
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(StreamsConfig.STATE_DIR_CONFIG, stateDir.toString());
        p.put(StreamsConfig.TOPOLOGY_OPTIMIZATION_CONFIG, StreamsConfig.OPTIMIZE);
        p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, "100");
        p.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, "0");
        StreamsBuilder builder = new StreamsBuilder();
        builder.table(
            topic,
            Consumed.with(Serdes.String(), Serdes.String()),
            Materialized.<String, String>as(Stores.inMemoryKeyValueStore("table"))
                .withKeySerde(Serdes.String())
                .withValueSerde(Serdes.String()));
        KafkaStreams streams = new KafkaStreams(builder.build(p), p);
        CountDownLatch running = new CountDownLatch(1);
        streams.setStateListener((now, before) -> {
            if (now == KafkaStreams.State.RUNNING) running.countDown();
            if (now == KafkaStreams.State.ERROR) System.err.println("streams went to ERROR");
        });
        streams.start();
        if (!running.await(120, TimeUnit.SECONDS)) throw new IllegalStateException("not RUNNING after 120 s");
        return streams;
    }

    static ReadOnlyKeyValueStore<String, String> store(KafkaStreams streams) {
        return streams.store(StoreQueryParameters.fromNameAndType("table", QueryableStoreTypes.keyValueStore()));
    }

    static long count(ReadOnlyKeyValueStore<String, String> store) {
        long n = 0;
        try (KeyValueIterator<String, String> it = store.all()) {
            while (it.hasNext()) { it.next(); n++; }
        }
        return n;
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], topic = args[1], appId = args[2];
        Path stateDir = Path.of(args[3]);
        long live = Long.parseLong(args[4]);
        KafkaStreams first = start(bootstrap, topic, appId, Files.createDirectories(stateDir.resolve("first")));
        long deadline = System.nanoTime() + Duration.ofSeconds(120).toNanos();
        while (count(store(first)) != live) {
            if (System.nanoTime() > deadline) throw new IllegalStateException("first run: " + count(store(first)) + " keys");
            Thread.sleep(100);
        }
        first.close(Duration.ofSeconds(60));
        KafkaStreams second = start(bootstrap, topic, appId, Files.createDirectories(stateDir.resolve("second")));
        StringBuilder out = new StringBuilder();
        try (KeyValueIterator<String, String> it = store(second).all()) {
            while (it.hasNext()) {
                KeyValue<String, String> kv = it.next();
                out.append(kv.key).append('\t').append(kv.value).append('\n');
            }
        }
        second.close(Duration.ofSeconds(60));
        System.out.print(out);
        System.out.println("END");
    }
}
