import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.util.Properties;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * Kafka's Java producer (transactions v2) whose commit is answered but the answer lost, its coordinator's
 * broker then killed (tests/integration/test_transactions_eos.py): sends c0..c2 to partitions 0..2, prints
 * "ready", waits for a line on stdin, commits (retrying the EndTxn at the new coordinator), prints "committed"
 * or the exception's class, then commits d0..d2 in a second transaction and prints "done".
 * Run as: java -cp 'LIB/*' TxnLostCommit.java BOOTSTRAP TOPIC TRANSACTIONAL_ID
 */
public class TxnLostCommit {
    public static void main(String[] args) throws Exception {
        Properties p = new Properties();
        p.put("bootstrap.servers", args[0]);
        p.put("transactional.id", args[2]);
        p.put("transaction.timeout.ms", "60000");
        p.put("max.block.ms", "60000");
        p.put("key.serializer", StringSerializer.class.getName());
        p.put("value.serializer", StringSerializer.class.getName());
        String topic = args[1];
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
            producer.initTransactions();
            producer.beginTransaction();
            for (int i = 0; i < 3; i++) producer.send(new ProducerRecord<>(topic, i, "k", "c" + i)).get();
            System.out.println("ready");
            System.out.flush();
            new BufferedReader(new InputStreamReader(System.in)).readLine();
            try {
                producer.commitTransaction();
                System.out.println("committed");
            } catch (Exception e) {
                System.out.println(e.getClass().getSimpleName());
                return;
            }
            producer.beginTransaction();
            for (int i = 0; i < 3; i++) producer.send(new ProducerRecord<>(topic, i, "k", "d" + i)).get();
            producer.commitTransaction();
            System.out.println("done");
        }
    }
}
