// A session with the RabbitMQ Java client (Debian librabbitmq-client-java): connect, qos, declare,
// confirm, publish, consume, ack, close. Usage (single-file source launch):
//   java -cp /usr/share/java/amqp-client.jar:/usr/share/java/slf4j-api.jar:/usr/share/java/slf4j-nop.jar JavaClientSession.java AMQP_URL
// Prints OK and exits 0 when it all worked.
import com.rabbitmq.client.*;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.TimeUnit;

public class JavaClientSession {
  public static void main(String[] args) throws Exception {
    ConnectionFactory factory = new ConnectionFactory();
    factory.setUri(args[0]);
    try (Connection conn = factory.newConnection()) {
      System.out.println("product: " + conn.getServerProperties().get("product"));
      Channel ch = conn.createChannel();
      ch.basicQos(10);
      String queue = ch.queueDeclare().getQueue();
      ch.confirmSelect();
      ch.basicPublish("", queue, true, MessageProperties.PERSISTENT_TEXT_PLAIN, "hello from Java".getBytes(StandardCharsets.UTF_8));
      ch.waitForConfirmsOrDie(10_000);
      ArrayBlockingQueue<String> got = new ArrayBlockingQueue<>(1);
      ch.basicConsume(queue, false, (tag, delivery) -> {
        ch.basicAck(delivery.getEnvelope().getDeliveryTag(), false);
        got.add(new String(delivery.getBody(), StandardCharsets.UTF_8));
      }, tag -> {});
      String body = got.poll(10, TimeUnit.SECONDS);
      if (!"hello from Java".equals(body)) throw new IllegalStateException("got " + body);
      ch.close();
    }
    System.out.println("OK");
  }
}
