import java.lang.reflect.Field;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import software.amazon.dynamodb.services.local.main.ServerRunner;
import software.amazon.dynamodb.services.local.server.DynamoDBProxyServer;

/**
 * DynamoDB Local on 127.0.0.1 only, for local mode (local/dynamodb-local.ts). DynamoDBLocal.jar
 * listens on every interface and has no option (nor system property) to choose one, and it
 * accepts any credentials. This builds the server as the jar's own main does, through
 * ServerRunner.createServerFromCommandLineArgs (AWS's documented way to embed it; same
 * arguments: -inMemory, -dbPath, -port, -sharedDb), then binds its Jetty connector to the
 * loopback address before starting it. If the jar's insides change, it exits with status 3
 * and local mode starts the plain jar instead, saying so.
 */
public final class LoopbackDynamoDbLocal {
  public static void main(String[] args) throws Exception {
    DynamoDBProxyServer proxy = ServerRunner.createServerFromCommandLineArgs(args);
    Connector[] connectors;
    try {
      Field field = DynamoDBProxyServer.class.getDeclaredField("server");
      field.setAccessible(true);
      connectors = ((Server) field.get(proxy)).getConnectors();
      if (connectors.length == 0) throw new IllegalStateException("no connector");
      for (Connector connector : connectors) ((ServerConnector) connector).setHost("127.0.0.1");
    } catch (ReflectiveOperationException | RuntimeException error) {
      System.err.println("LoopbackDynamoDbLocal: cannot bind to 127.0.0.1: " + error);
      System.exit(3);
      return;
    }
    proxy.start();
    System.out.println("Listening on 127.0.0.1 only");
    proxy.join();
  }
}
