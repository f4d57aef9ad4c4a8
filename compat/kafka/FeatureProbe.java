import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.util.Arrays;
import java.util.Collection;

/**
 * Prints the feature levels a Kafka release's broker supports and finalizes on a new cluster, one line per
 * feature: NAME MIN MAX DEFAULT_LEVEL. Run with that release's kafka-server-common and kafka-clients jars on
 * the class path (java -cp ... FeatureProbe.java); reads the release's own classes by reflection, since
 * their names moved between releases. Used by compat/derive_kafka_versions.py.
 */
public class FeatureProbe {
    static Object call(Object target, Class<?> cls, String name) throws Exception {
        Method m = cls.getMethod(name);
        return m.invoke(target);
    }

    static Field anyField(Class<?> cls, String... names) throws NoSuchFieldException {
        for (String name : names) {
            try {
                return cls.getField(name);
            } catch (NoSuchFieldException e) {
                // older or newer name
            }
        }
        throw new NoSuchFieldException(String.join("/", names));
    }

    public static void main(String[] args) throws Exception {
        Class<?> mv = Class.forName("org.apache.kafka.server.common.MetadataVersion");
        Object latest;
        try {
            latest = call(null, mv, "latestProduction");
        } catch (NoSuchMethodException e) {
            latest = call(null, mv, "latest");
        }
        Object min = anyField(mv, "MINIMUM_VERSION", "MINIMUM_KRAFT_VERSION", "MINIMUM_BOOTSTRAP_VERSION").get(null);
        Object level = call(latest, mv, "featureLevel");
        System.out.println("metadata.version " + call(min, mv, "featureLevel") + " " + level + " " + level);
        Class<?> feat = null;
        for (String name : new String[] {"org.apache.kafka.server.common.Feature", "org.apache.kafka.server.common.Features"}) {
            try {
                Class<?> c = Class.forName(name);
                if (c.isEnum()) {
                    feat = c;
                    break;
                }
            } catch (ClassNotFoundException e) {
                // not in this release
            }
        }
        if (feat == null) {
            return;
        }
        Collection<?> production;
        try {
            production = (Collection<?>) feat.getField("PRODUCTION_FEATURES").get(null);
        } catch (NoSuchFieldException e) {
            production = Arrays.asList(feat.getEnumConstants());
        }
        for (Object f : production) {
            String name = (String) call(f, feat, "featureName");
            short max;
            try {
                max = (short) call(f, feat, "latestProduction");
            } catch (NoSuchMethodException e) {
                continue;
            }
            short minimum = 0;
            try {
                minimum = (short) call(f, feat, "minimumProduction");
            } catch (NoSuchMethodException e) {
                // 0
            }
            short dflt = -1;
            try {
                dflt = (short) feat.getMethod("defaultLevel", mv).invoke(f, latest);
            } catch (NoSuchMethodException e) {
                try {
                    Object fv = feat.getMethod("defaultValue", mv).invoke(f, latest);
                    dflt = (short) fv.getClass().getMethod("featureLevel").invoke(fv);
                } catch (NoSuchMethodException e2) {
                    // unknown: -1
                }
            }
            System.out.println(name + " " + minimum + " " + max + " " + dflt);
        }
    }
}
