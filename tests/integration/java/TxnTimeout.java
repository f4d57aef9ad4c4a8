import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * Kafka's Java producer whose transaction the coordinator aborts on timeout (tests/integration/
 * test_transactions_timeout.py): begins, sends "lost" to partition 0, prints "open" and waits for a line on
 * stdin (the test sends it once the coordinator has aborted the transaction); then sends "late", commits, and
 * recovers as an application would (abortTransaction and a new transaction; a new producer if that is fatal)
 * to commit "recovered". Prints what each step gave: "late: ok" or the exception's class, and so on.
 * Run as: java -cp 'LIB/*' TxnTimeout.java BOOTSTRAP TOPIC TRANSACTIONAL_ID
 */
public class TxnTimeout {
    static KafkaProducer<String, String> producer(String bootstrap, String tid) {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("transactional.id", tid);
        p.put("transaction.timeout.ms", "3000");
        p.put("max.block.ms", "30000");
        p.put("delivery.timeout.ms", "30000");
        p.put("request.timeout.ms", "20000");
        p.put("key.serializer", StringSerializer.class.getName());
        p.put("value.serializer", StringSerializer.class.getName());
        return new KafkaProducer<>(p);
    }

    static String name(Throwable e) {
        while (e instanceof ExecutionException && e.getCause() != null) e = e.getCause();
        return e.getClass().getSimpleName();
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], topic = args[1], tid = args[2];
        KafkaProducer<String, String> p = producer(bootstrap, tid);
        p.initTransactions();
        p.beginTransaction();
        p.send(new ProducerRecord<>(topic, 0, "k", "lost")).get();
        System.out.println("open");
        System.out.flush();
        new BufferedReader(new InputStreamReader(System.in)).readLine();
        try {
            p.send(new ProducerRecord<>(topic, 0, "k", "late")).get();
            System.out.println("late: ok");
        } catch (Exception e) {
            System.out.println("late: " + name(e));
        }
        try {
            p.commitTransaction();
            System.out.println("commit: ok");
        } catch (Exception e) {
            System.out.println("commit: " + name(e));
        }
        try {
            p.abortTransaction();
            System.out.println("abort: ok");
        } catch (Exception e) {
            System.out.println("abort: " + name(e));
            p.close();
            p = producer(bootstrap, tid);
            p.initTransactions();
        }
        p.beginTransaction();
        p.send(new ProducerRecord<>(topic, 0, "k", "recovered")).get();
        p.commitTransaction();
        System.out.println("recovered");
        p.close();
    }
}
