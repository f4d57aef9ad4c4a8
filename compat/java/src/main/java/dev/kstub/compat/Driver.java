package dev.kstub.compat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.NullNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.databind.node.TextNode;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.CommitFailedException;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.OffsetAndTimestamp;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.errors.ApiException;
import org.apache.kafka.common.errors.RebalanceInProgressException;
import org.apache.kafka.common.errors.TimeoutException;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.protocol.Errors;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.utils.internals.AppInfoParser;

/**
 * The Java client's leg of kstub's compatibility suite: primitive operations of kafka-clients, asked for
 * as JSON lines on stdin and answered as JSON lines on stdout (the same protocol as compat/go/main.go).
 *
 * <pre>
 * in:  {"id": 1, "op": "produce", "args": {"bootstrap": "...", "timeoutMs": 15000, ...}}
 * out: {"id": 1, "ok": true, "result": ...}  or  {"id": 1, "ok": false, "error": {"kind": ..., "message": ...}}
 * </pre>
 *
 * Each command runs on a thread of its own, so several can be under way at once. The error kind is Kafka's
 * error name where the client gives one, TIMEOUT, or UNSUPPORTED. Keys, values and header values travel as
 * base64 (null stays null). A "member" command is a background group member: it prints
 * {"id": N, "event": "assigned", "partitions": [...]} and {"id": N, "event": "records", "records": [...]} lines
 * until {"op": "stop", "args": {"member": N}} arrives, then leaves the group and answers command N ("pattern"
 * instead of "topic": a KIP-848 broker-side regular expression subscription). The driver
 * exits when its stdin closes.
 */
public final class Driver {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final PrintStream OUT = new PrintStream(System.out, false, StandardCharsets.UTF_8);
  private static final Map<Long, Member> MEMBERS = new ConcurrentHashMap<>();
  private static final Base64.Encoder B64 = Base64.getEncoder();
  private static final Base64.Decoder UNB64 = Base64.getDecoder();

  private Driver() {}

  /** An operation the client cannot perform the way asked (the cell is a skip). */
  static final class Unsupported extends Exception {
    Unsupported(String message) {
      super(message);
    }
  }

  static final class Member {
    volatile boolean stopping;
  }

  public static void main(String[] argv) throws Exception {
    ExecutorService pool =
        Executors.newCachedThreadPool(
            r -> {
              Thread t = new Thread(r, "driver-command");
              t.setDaemon(true);
              return t;
            });
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    String line;
    while ((line = in.readLine()) != null) {
      if (line.isBlank()) {
        continue;
      }
      JsonNode command = JSON.readTree(line);
      long id = command.path("id").asLong();
      String op = command.path("op").asText();
      JsonNode args = command.path("args");
      pool.execute(() -> handle(id, op, args));
    }
    for (Member m : MEMBERS.values()) {
      m.stopping = true;
    }
    pool.shutdown();
    pool.awaitTermination(30, TimeUnit.SECONDS);
    OUT.flush();
    System.exit(0);
  }

  static void emit(ObjectNode message) {
    String text;
    try {
      text = JSON.writeValueAsString(message);
    } catch (Exception e) {
      text = "{\"id\": " + message.path("id").asLong() + ", \"ok\": false, \"error\": {\"kind\": \"ERROR\"}}";
    }
    synchronized (OUT) {
      OUT.print(text);
      OUT.print('\n');
      OUT.flush();
    }
  }

  static void handle(long id, String op, JsonNode a) {
    ObjectNode reply = JSON.createObjectNode();
    reply.put("id", id);
    try {
      JsonNode result =
          switch (op) {
            case "version" ->
                TextNode.valueOf(AppInfoParser.getVersion() + " (java " + System.getProperty("java.version") + ")");
            case "metadata" -> metadata(a);
            case "create_topic" -> createTopic(a);
            case "produce" -> produce(a, a.path("topic").asText(), a.path("messages"));
            case "consume" -> consume(a);
            case "group_consume" -> groupConsume(a);
            case "consume_new" -> consumeNew(a);
            case "offsets_for_times" -> offsetsForTimes(a);
            case "member" -> member(id, a);
            case "stop" -> stop(a);
            default -> throw new Unsupported("unknown operation " + op);
          };
      reply.put("ok", true);
      reply.set("result", result == null ? NullNode.getInstance() : result);
    } catch (Throwable e) {
      reply.put("ok", false);
      ObjectNode error = reply.putObject("error");
      error.put("kind", kind(e));
      error.put("message", message(e));
    }
    emit(reply);
  }

  // --- errors ------------------------------------------------------------------------------

  static Throwable root(Throwable e) {
    Throwable t = e;
    while ((t instanceof ExecutionException || t.getClass() == org.apache.kafka.common.KafkaException.class)
        && t.getCause() != null) {
      t = t.getCause();
    }
    return t;
  }

  static String kind(Throwable e) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      if (t instanceof Unsupported) {
        return "UNSUPPORTED";
      }
      if (t instanceof TimeoutException || t instanceof java.util.concurrent.TimeoutException) {
        return "TIMEOUT";
      }
      if (t instanceof ApiException) {
        Errors error = Errors.forException(t);
        if (error != Errors.UNKNOWN_SERVER_ERROR) {
          return error.name();
        }
      }
    }
    return root(e).getClass().getSimpleName();
  }

  static String message(Throwable e) {
    Throwable t = root(e);
    return t.getClass().getName() + ": " + t.getMessage();
  }

  // --- configuration -----------------------------------------------------------------------

  static int timeoutMs(JsonNode a) {
    return a.path("timeoutMs").asInt(15000);
  }

  static Properties common(JsonNode a) {
    Properties p = new Properties();
    p.put("bootstrap.servers", a.path("bootstrap").asText());
    p.put("client.id", "kstub-compat-java");
    p.put("request.timeout.ms", String.valueOf(timeoutMs(a)));
    p.put("default.api.timeout.ms", String.valueOf(timeoutMs(a)));
    p.put("reconnect.backoff.max.ms", "1000");
    p.put("retry.backoff.max.ms", "1000");
    return p;
  }

  static Properties consumerProps(JsonNode a, String group, String reset) {
    Properties p = common(a);
    p.put("key.deserializer", ByteArrayDeserializer.class.getName());
    p.put("value.deserializer", ByteArrayDeserializer.class.getName());
    p.put("enable.auto.commit", "false");
    p.put("fetch.max.wait.ms", "100");
    if (group != null && "consumer".equals(a.path("protocol").asText("classic"))) {
      // the consumer group protocol (KIP-848): the broker sets the session and heartbeat times
      p.put("group.id", group);
      p.put("group.protocol", "consumer");
      if (a.hasNonNull("instance")) {
        p.put("group.instance.id", a.path("instance").asText());
      }
    } else if (group != null) {
      p.put("group.id", group);
      p.put("group.protocol", "classic");
      p.put("session.timeout.ms", "10000");
      p.put("heartbeat.interval.ms", "500");
    }
    if (reset != null) {
      p.put("auto.offset.reset", reset);
    }
    return p;
  }

  static Duration deadlineLeft(long deadline) {
    return Duration.ofMillis(Math.max(0, deadline - System.currentTimeMillis()));
  }

  // --- values ------------------------------------------------------------------------------

  static String b64(byte[] data) {
    return data == null ? null : B64.encodeToString(data);
  }

  static byte[] unb64(JsonNode text) {
    return text == null || text.isNull() || text.isMissingNode() ? null : UNB64.decode(text.asText());
  }

  static ObjectNode record(ConsumerRecord<byte[], byte[]> r) {
    ObjectNode o = JSON.createObjectNode();
    o.put("partition", r.partition());
    o.put("offset", r.offset());
    o.put("key", b64(r.key()));
    o.put("value", b64(r.value()));
    ArrayNode headers = o.putArray("headers");
    for (Header h : r.headers()) {
      headers.addArray().add(h.key()).add(b64(h.value()));
    }
    o.put("timestamp", r.timestamp());
    return o;
  }

  static Set<Integer> partitionsOf(Collection<TopicPartition> tps) {
    Set<Integer> out = new TreeSet<>();
    for (TopicPartition tp : tps) {
      out.add(tp.partition());
    }
    return out;
  }

  static ArrayNode ints(Collection<Integer> values) {
    ArrayNode out = JSON.createArrayNode();
    values.forEach(out::add);
    return out;
  }

  // --- operations --------------------------------------------------------------------------

  static JsonNode metadata(JsonNode a) throws Exception {
    List<String> topics = new ArrayList<>();
    a.path("topics").forEach(t -> topics.add(t.asText()));
    try (Admin admin = Admin.create(common(a))) {
      ObjectNode out = JSON.createObjectNode();
      ArrayNode brokers = out.putArray("brokers");
      for (Node n : admin.describeCluster().nodes().get()) {
        brokers.addArray().add(n.id()).add(n.host()).add(n.port());
      }
      ObjectNode byTopic = out.putObject("topics");
      if (!topics.isEmpty()) {
        Map<String, TopicDescription> described = admin.describeTopics(topics).allTopicNames().get();
        for (TopicDescription d : described.values()) {
          ArrayNode parts = byTopic.putArray(d.name());
          for (TopicPartitionInfo p : d.partitions()) {
            ObjectNode po = parts.addObject();
            po.put("partition", p.partition());
            po.put("leader", p.leader() == null ? -1 : p.leader().id());
            ArrayNode replicas = po.putArray("replicas");
            p.replicas().forEach(n -> replicas.add(n.id()));
            ArrayNode isr = po.putArray("isr");
            p.isr().forEach(n -> isr.add(n.id()));
          }
        }
      }
      return out;
    }
  }

  static JsonNode createTopic(JsonNode a) throws Exception {
    try (Admin admin = Admin.create(common(a))) {
      NewTopic topic =
          new NewTopic(
              a.path("topic").asText(),
              a.path("partitions").asInt(),
              (short) a.path("replicationFactor").asInt(1));
      admin.createTopics(List.of(topic)).all().get();
      return null;
    }
  }

  static ArrayNode produce(JsonNode a, String topic, JsonNode messages) throws Exception {
    Properties p = common(a);
    int timeout = timeoutMs(a);
    p.put("key.serializer", ByteArraySerializer.class.getName());
    p.put("value.serializer", ByteArraySerializer.class.getName());
    p.put("acks", a.path("acks").asText("all"));
    p.put("max.block.ms", String.valueOf(timeout));
    p.put("delivery.timeout.ms", String.valueOf(timeout * 2));
    JsonNode compression = a.path("compression");
    if (compression.isTextual()) {
      p.put("compression.type", compression.asText());
    }
    JsonNode idempotent = a.path("idempotent");
    if (idempotent.isBoolean()) {
      p.put("enable.idempotence", String.valueOf(idempotent.asBoolean()));
    }
    boolean flushEach = a.path("flushEach").asBoolean(false);
    KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p);
    try {
      List<Future<RecordMetadata>> sent = new ArrayList<>();
      for (JsonNode m : messages) {
        RecordHeaders headers = new RecordHeaders();
        for (JsonNode h : m.path("headers")) {
          headers.add(h.get(0).asText(), unb64(h.get(1)));
        }
        JsonNode partition = m.path("partition");
        JsonNode timestamp = m.path("timestamp");
        ProducerRecord<byte[], byte[]> record =
            new ProducerRecord<>(
                topic,
                partition.isNumber() ? partition.asInt() : null,
                timestamp.isNumber() ? timestamp.asLong() : null,
                unb64(m.path("key")),
                unb64(m.path("value")),
                headers);
        Future<RecordMetadata> f = producer.send(record);
        if (flushEach) {
          f.get(timeout * 2L, TimeUnit.MILLISECONDS);
        }
        sent.add(f);
      }
      ArrayNode deliveries = JSON.createArrayNode();
      for (Future<RecordMetadata> f : sent) {
        RecordMetadata md = f.get(timeout * 2L, TimeUnit.MILLISECONDS);
        deliveries.addObject().put("partition", md.partition()).put("offset", md.offset());
      }
      return deliveries;
    } finally {
      producer.close(Duration.ofMillis(timeout));
    }
  }

  /** Poll until `count` records have arrived (more are dropped) or the deadline passes. */
  static void pollUntil(KafkaConsumer<byte[], byte[]> c, List<ConsumerRecord<byte[], byte[]>> got, int count, long deadline) {
    while (got.size() < count && System.currentTimeMillis() < deadline) {
      for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(100))) {
        if (got.size() < count) {
          got.add(r);
        }
      }
    }
  }

  static ArrayNode records(List<ConsumerRecord<byte[], byte[]>> got) {
    ArrayNode out = JSON.createArrayNode();
    got.forEach(r -> out.add(record(r)));
    return out;
  }

  static JsonNode consume(JsonNode a) {
    String topic = a.path("topic").asText();
    long deadline = System.currentTimeMillis() + timeoutMs(a);
    try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(consumerProps(a, null, "none"))) {
      List<TopicPartition> tps = new ArrayList<>();
      a.path("starts").fieldNames().forEachRemaining(p -> tps.add(new TopicPartition(topic, Integer.parseInt(p))));
      c.assign(tps);
      for (TopicPartition tp : tps) {
        c.seek(tp, a.path("starts").path(String.valueOf(tp.partition())).asLong());
      }
      List<ConsumerRecord<byte[], byte[]>> got = new ArrayList<>();
      pollUntil(c, got, a.path("count").asInt(), deadline);
      return records(got);
    }
  }

  static Map<TopicPartition, OffsetAndMetadata> nextOffsets(Iterable<ConsumerRecord<byte[], byte[]>> records) {
    Map<TopicPartition, OffsetAndMetadata> out = new HashMap<>();
    for (ConsumerRecord<byte[], byte[]> r : records) {
      TopicPartition tp = new TopicPartition(r.topic(), r.partition());
      OffsetAndMetadata prev = out.get(tp);
      if (prev == null || prev.offset() < r.offset() + 1) {
        out.put(tp, new OffsetAndMetadata(r.offset() + 1));
      }
    }
    return out;
  }

  static JsonNode groupConsume(JsonNode a) {
    String topic = a.path("topic").asText();
    long deadline = System.currentTimeMillis() + timeoutMs(a);
    Properties p = consumerProps(a, a.path("group").asText(), a.path("reset").asText("earliest"));
    try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p)) {
      c.subscribe(List.of(topic));
      List<ConsumerRecord<byte[], byte[]>> got = new ArrayList<>();
      pollUntil(c, got, a.path("count").asInt(), deadline);
      if (!got.isEmpty()) {
        c.commitSync(nextOffsets(got));
      }
      return records(got);
    }
  }

  static JsonNode consumeNew(JsonNode a) throws Exception {
    String topic = a.path("topic").asText();
    JsonNode messages = a.path("messages");
    long deadline = System.currentTimeMillis() + timeoutMs(a);
    try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(consumerProps(a, a.path("group").asText(), "latest"))) {
      c.subscribe(List.of(topic));
      List<ConsumerRecord<byte[], byte[]>> got = new ArrayList<>();
      while (c.assignment().isEmpty()) {
        if (System.currentTimeMillis() > deadline) {
          throw new TimeoutException("the consumer was assigned no partition of " + topic);
        }
        c.poll(Duration.ofMillis(100)).forEach(got::add);
      }
      for (TopicPartition tp : c.assignment()) {
        c.position(tp, deadlineLeft(deadline)); // resolves auto.offset.reset=latest
      }
      ObjectNode opts = a.deepCopy();
      opts.remove(List.of("compression", "idempotent", "flushEach"));
      opts.put("acks", "all");
      produce(opts, topic, messages);
      pollUntil(c, got, messages.size(), deadline);
      return records(got);
    }
  }

  static JsonNode offsetsForTimes(JsonNode a) {
    String topic = a.path("topic").asText();
    Map<TopicPartition, Long> query = new HashMap<>();
    a.path("times")
        .fields()
        .forEachRemaining(e -> query.put(new TopicPartition(topic, Integer.parseInt(e.getKey())), e.getValue().asLong()));
    try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(consumerProps(a, null, null))) {
      Map<TopicPartition, OffsetAndTimestamp> found = c.offsetsForTimes(query);
      ObjectNode out = JSON.createObjectNode();
      for (TopicPartition tp : query.keySet()) {
        OffsetAndTimestamp o = found.get(tp);
        if (o == null) {
          out.putNull(String.valueOf(tp.partition()));
        } else {
          out.put(String.valueOf(tp.partition()), o.offset());
        }
      }
      return out;
    }
  }

  /** A background member: consumes, commits after every poll that returned records, reports its assignment. */
  static JsonNode member(long id, JsonNode a) {
    String topic = a.path("topic").asText();
    Member self = new Member();
    MEMBERS.put(id, self);
    try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(consumerProps(a, a.path("group").asText(), "earliest"))) {
      if (a.hasNonNull("pattern")) {
        // the consumer group protocol's broker-side regular expression (KIP-848)
        c.subscribe(new org.apache.kafka.clients.consumer.SubscriptionPattern(a.path("pattern").asText()));
      } else {
        c.subscribe(List.of(topic));
      }
      Set<Integer> reported = null;
      while (!self.stopping) {
        ConsumerRecords<byte[], byte[]> polled = c.poll(Duration.ofMillis(100));
        Set<Integer> now = partitionsOf(c.assignment());
        if (!now.equals(reported)) {
          reported = now;
          ObjectNode event = JSON.createObjectNode().put("id", id).put("event", "assigned");
          event.set("partitions", ints(now));
          emit(event);
        }
        if (polled.isEmpty()) {
          continue;
        }
        try {
          c.commitSync(nextOffsets(polled));
        } catch (CommitFailedException | RebalanceInProgressException e) {
          // not committed: read these again (or let the partition's next owner read them)
          for (TopicPartition tp : polled.partitions()) {
            if (c.assignment().contains(tp)) {
              c.seek(tp, polled.records(tp).get(0).offset());
            }
          }
          continue;
        }
        List<ConsumerRecord<byte[], byte[]>> got = new ArrayList<>();
        polled.forEach(got::add);
        ObjectNode event = JSON.createObjectNode().put("id", id).put("event", "records");
        event.set("records", records(got));
        emit(event);
      }
      return null;
    } finally {
      MEMBERS.remove(id);
    }
  }

  static JsonNode stop(JsonNode a) {
    Member m = MEMBERS.get(a.path("member").asLong());
    if (m != null) {
      m.stopping = true;
    }
    return null;
  }
}
