// The franz-go leg of kstub's compatibility suite: primitive operations of franz-go's kgo client
// (and kadm for admin requests), asked for as JSON lines on stdin and answered as JSON lines on
// stdout, in the same protocol as the Java client's driver (compat/java):
//
//	in:  {"id": 1, "op": "produce", "args": {"bootstrap": "...", "timeoutMs": 15000, ...}}
//	out: {"id": 1, "ok": true, "result": ...}  or  {"id": 1, "ok": false, "error": {"kind": ..., "message": ...}}
//
// Each command runs in a goroutine of its own, so several can be under way at once. The error kind
// is Kafka's error name where the client gives one, TIMEOUT, or UNSUPPORTED. Keys, values and header
// values travel as base64 (null stays null). A "member" command is a background group member: it
// prints {"id": N, "event": "assigned", "partitions": [...]} and {"id": N, "event": "records",
// "records": [...]} lines until {"op": "stop", "args": {"member": N}} arrives, then leaves the group
// and answers command N. The driver exits when its stdin closes.
package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

type command struct {
	ID   int64           `json:"id"`
	Op   string          `json:"op"`
	Args json.RawMessage `json:"args"`
}

type msg struct {
	Key       *string      `json:"key"`
	Value     *string      `json:"value"`
	Headers   [][2]*string `json:"headers"`
	Partition *int32       `json:"partition"`
	Timestamp *int64       `json:"timestamp"`
}

type args struct {
	Bootstrap         string           `json:"bootstrap"`
	TimeoutMs         int              `json:"timeoutMs"`
	Topics            []string         `json:"topics"`
	Topic             string           `json:"topic"`
	Partitions        int32            `json:"partitions"`
	ReplicationFactor int16            `json:"replicationFactor"`
	Messages          []msg            `json:"messages"`
	Acks              string           `json:"acks"`
	Compression       *string          `json:"compression"`
	Idempotent        *bool            `json:"idempotent"`
	FlushEach         bool             `json:"flushEach"`
	Starts            map[string]int64 `json:"starts"`
	Count             int              `json:"count"`
	Group             string           `json:"group"`
	Reset             string           `json:"reset"`
	Times             map[string]int64 `json:"times"`
	Member            int64            `json:"member"`
}

type record struct {
	Partition int32        `json:"partition"`
	Offset    int64        `json:"offset"`
	Key       *string      `json:"key"`
	Value     *string      `json:"value"`
	Headers   [][2]*string `json:"headers"`
	Timestamp int64        `json:"timestamp"`
}

var (
	outMu   sync.Mutex
	out     = bufio.NewWriter(os.Stdout)
	members sync.Map // id -> context.CancelFunc
)

func emit(v any) {
	data, err := json.Marshal(v)
	if err != nil {
		data = []byte(`{"ok": false, "error": {"kind": "ERROR", "message": "cannot encode the answer"}}`)
	}
	outMu.Lock()
	defer outMu.Unlock()
	out.Write(data)
	out.WriteByte('\n')
	out.Flush()
}

type unsupported struct{ msg string }

func (u unsupported) Error() string { return u.msg }

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 256<<20)
	var running sync.WaitGroup
	for in.Scan() {
		line := strings.TrimSpace(in.Text())
		if line == "" {
			continue
		}
		var c command
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			emit(map[string]any{"id": -1, "ok": false, "error": map[string]string{"kind": "ERROR", "message": err.Error()}})
			continue
		}
		running.Add(1)
		go func() {
			defer running.Done()
			handle(c)
		}()
	}
	members.Range(func(_, cancel any) bool {
		cancel.(context.CancelFunc)()
		return true
	})
	done := make(chan struct{})
	go func() { running.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
	}
}

func handle(c command) {
	var a args
	result, err := any(nil), json.Unmarshal(c.Args, &a)
	if err == nil {
		if a.TimeoutMs <= 0 {
			a.TimeoutMs = 15000
		}
		result, err = run(c.ID, c.Op, &a)
	}
	if err != nil {
		emit(map[string]any{"id": c.ID, "ok": false, "error": map[string]string{"kind": kind(err), "message": err.Error()}})
		return
	}
	emit(map[string]any{"id": c.ID, "ok": true, "result": result})
}

func run(id int64, op string, a *args) (any, error) {
	switch op {
	case "version":
		return version(), nil
	case "metadata":
		return metadata(a)
	case "create_topic":
		return nil, createTopic(a)
	case "produce":
		return produce(a, a.Topic, a.Messages)
	case "consume":
		return consume(a)
	case "group_consume":
		return groupConsume(a)
	case "consume_new":
		return consumeNew(a)
	case "offsets_for_times":
		return offsetsForTimes(a)
	case "member":
		return nil, member(id, a)
	case "stop":
		if cancel, ok := members.Load(a.Member); ok {
			cancel.(context.CancelFunc)()
		}
		return nil, nil
	}
	return nil, unsupported{"unknown operation " + op}
}

func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "?"
	}
	for _, dep := range info.Deps {
		if dep.Path == "github.com/twmb/franz-go" {
			return dep.Version + " (" + info.GoVersion + ")"
		}
	}
	return "? (" + info.GoVersion + ")"
}

func kind(err error) string {
	var u unsupported
	if errors.As(err, &u) {
		return "UNSUPPORTED"
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Message
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, kgo.ErrRecordTimeout) ||
		(errors.As(err, &ne) && ne.Timeout()) {
		return "TIMEOUT"
	}
	return "ERROR"
}

// --- values -----------------------------------------------------------------------------------

func b64(data []byte) *string {
	if data == nil {
		return nil
	}
	s := base64.StdEncoding.EncodeToString(data)
	return &s
}

func unb64(text *string) ([]byte, error) {
	if text == nil {
		return nil, nil
	}
	data, err := base64.StdEncoding.DecodeString(*text)
	if data == nil && err == nil {
		data = []byte{}
	}
	return data, err
}

func recordOf(r *kgo.Record) record {
	headers := make([][2]*string, 0, len(r.Headers))
	for _, h := range r.Headers {
		k := h.Key
		headers = append(headers, [2]*string{&k, b64(h.Value)})
	}
	return record{r.Partition, r.Offset, b64(r.Key), b64(r.Value), headers, r.Timestamp.UnixMilli()}
}

func recordsOf(rs []*kgo.Record) []record {
	out := make([]record, 0, len(rs))
	for _, r := range rs {
		out = append(out, recordOf(r))
	}
	return out
}

// --- clients ----------------------------------------------------------------------------------

func timeout(a *args) time.Duration { return time.Duration(a.TimeoutMs) * time.Millisecond }

func clientOpts(a *args) []kgo.Opt {
	return []kgo.Opt{
		kgo.SeedBrokers(strings.Split(a.Bootstrap, ",")...),
		kgo.ClientID("kstub-compat-franz-go"),
		kgo.RetryTimeout(timeout(a)),
		kgo.DialTimeout(5 * time.Second),
		kgo.RequestTimeoutOverhead(timeout(a)),
		kgo.FetchMaxWait(100 * time.Millisecond),
	}
}

func newClient(a *args, extra ...kgo.Opt) (*kgo.Client, error) {
	return kgo.NewClient(append(clientOpts(a), extra...)...)
}

func groupOpts(a *args, reset kgo.Offset) []kgo.Opt {
	return []kgo.Opt{
		kgo.ConsumerGroup(a.Group),
		kgo.ConsumeTopics(a.Topic),
		kgo.ConsumeResetOffset(reset),
		kgo.DisableAutoCommit(),
		kgo.SessionTimeout(10 * time.Second),
		kgo.HeartbeatInterval(500 * time.Millisecond),
		kgo.RebalanceTimeout(timeout(a)),
	}
}

func resetOffset(name string) kgo.Offset {
	if name == "latest" {
		return kgo.NewOffset().AtEnd()
	}
	return kgo.NewOffset().AtStart()
}

// --- operations -------------------------------------------------------------------------------

func metadata(a *args) (any, error) {
	cl, err := newClient(a)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout(a))
	defer cancel()
	meta, err := kadm.NewClient(cl).Metadata(ctx, a.Topics...)
	if err != nil {
		return nil, err
	}
	brokers := [][]any{}
	for _, b := range meta.Brokers {
		brokers = append(brokers, []any{b.NodeID, b.Host, b.Port})
	}
	topics := map[string][]map[string]any{}
	for name, t := range meta.Topics {
		if t.Err != nil {
			return nil, fmt.Errorf("topic %s: %w", name, t.Err)
		}
		parts := []map[string]any{}
		for _, p := range t.Partitions.Sorted() {
			parts = append(parts, map[string]any{
				"partition": p.Partition, "leader": p.Leader, "replicas": p.Replicas, "isr": p.ISR,
			})
		}
		topics[name] = parts
	}
	return map[string]any{"brokers": brokers, "topics": topics}, nil
}

func createTopic(a *args) error {
	cl, err := newClient(a)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout(a))
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, a.Partitions, a.ReplicationFactor, nil, a.Topic)
	if err != nil {
		return err
	}
	return resp.Err
}

func produce(a *args, topic string, msgs []msg) ([]map[string]any, error) {
	opts := []kgo.Opt{}
	switch a.Acks {
	case "", "all", "-1":
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	case "1":
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	case "0":
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
	default:
		return nil, unsupported{"acks=" + a.Acks}
	}
	if a.Idempotent != nil && !*a.Idempotent {
		opts = append(opts, kgo.DisableIdempotentWrite())
	}
	if a.Compression != nil {
		codecs := map[string]kgo.CompressionCodec{
			"gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
			"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
		}
		codec, ok := codecs[*a.Compression]
		if !ok {
			return nil, unsupported{"franz-go has no codec " + *a.Compression}
		}
		opts = append(opts, kgo.ProducerBatchCompression(codec))
	}
	// Messages name their partition, or all leave it to the default (sticky, murmur2 by key) partitioner.
	explicit := 0
	for _, m := range msgs {
		if m.Partition != nil {
			explicit++
		}
	}
	if explicit == len(msgs) && explicit > 0 {
		opts = append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	} else if explicit != 0 {
		return nil, unsupported{"franz-go's adapter produces either all messages to named partitions or none"}
	}
	// No kgo.RecordDeliveryTimeout: kgo counts it from the record's timestamp, which scenarios may set in
	// the past. The context passed to ProduceSync bounds the call instead.
	opts = append(opts, kgo.ProduceRequestTimeout(timeout(a)))
	cl, err := newClient(a, opts...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	records := make([]*kgo.Record, 0, len(msgs))
	for _, m := range msgs {
		r := &kgo.Record{Topic: topic}
		if r.Key, err = unb64(m.Key); err != nil {
			return nil, err
		}
		if r.Value, err = unb64(m.Value); err != nil {
			return nil, err
		}
		for _, h := range m.Headers {
			v, err := unb64(h[1])
			if err != nil {
				return nil, err
			}
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: *h[0], Value: v})
		}
		if m.Partition != nil {
			r.Partition = *m.Partition
		}
		if m.Timestamp != nil {
			r.Timestamp = time.UnixMilli(*m.Timestamp)
		}
		records = append(records, r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*timeout(a))
	defer cancel()
	batches := [][]*kgo.Record{records}
	if a.FlushEach {
		batches = batches[:0]
		for _, r := range records {
			batches = append(batches, []*kgo.Record{r})
		}
	}
	deliveries := []map[string]any{}
	for _, batch := range batches {
		if err := cl.ProduceSync(ctx, batch...).FirstErr(); err != nil {
			return nil, err
		}
		for _, r := range batch {
			deliveries = append(deliveries, map[string]any{"partition": r.Partition, "offset": r.Offset})
		}
	}
	return deliveries, nil
}

// pollUntil polls until count records have arrived (more are left unread) or ctx ends.
func pollUntil(ctx context.Context, cl *kgo.Client, got []*kgo.Record, count int) ([]*kgo.Record, error) {
	for len(got) < count {
		fetches := cl.PollRecords(ctx, count-len(got))
		if ctx.Err() != nil {
			break
		}
		var failed error
		fetches.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) && failed == nil {
				failed = fmt.Errorf("fetching %s[%d]: %w", topic, p, err)
			}
		})
		if failed != nil {
			return got, failed
		}
		got = append(got, fetches.Records()...)
	}
	return got, nil
}

func consume(a *args) (any, error) {
	starts := map[int32]kgo.Offset{}
	for p, o := range a.Starts {
		n, err := strconv.Atoi(p)
		if err != nil {
			return nil, err
		}
		starts[int32(n)] = kgo.NewOffset().At(o)
	}
	cl, err := newClient(a, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{a.Topic: starts}))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout(a))
	defer cancel()
	got, err := pollUntil(ctx, cl, nil, a.Count)
	return recordsOf(got), err
}

func groupConsume(a *args) (any, error) {
	cl, err := newClient(a, groupOpts(a, resetOffset(a.Reset))...)
	if err != nil {
		return nil, err
	}
	defer cl.Close() // leaves the group
	ctx, cancel := context.WithTimeout(context.Background(), timeout(a))
	defer cancel()
	got, err := pollUntil(ctx, cl, nil, a.Count)
	if err != nil {
		return nil, err
	}
	if len(got) > 0 {
		commitCtx, cancelCommit := context.WithTimeout(context.Background(), timeout(a))
		defer cancelCommit()
		if err := cl.CommitRecords(commitCtx, got...); err != nil {
			return nil, err
		}
	}
	return recordsOf(got), nil
}

// fetchSent tells when the client sends its first Fetch request once it has an assignment: franz-go
// fetches only partitions whose position is known, so by then auto.offset.reset has set it.
type fetchSent struct {
	assigned chan struct{}
	sent     chan struct{}
	once     sync.Once
	assign   sync.Once
}

func (f *fetchSent) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if key != 1 || err != nil {
		return
	}
	select {
	case <-f.assigned:
		f.once.Do(func() { close(f.sent) })
	default:
	}
}

func consumeNew(a *args) (any, error) {
	hook := &fetchSent{assigned: make(chan struct{}), sent: make(chan struct{})}
	opts := append(groupOpts(a, kgo.NewOffset().AtEnd()),
		kgo.WithHooks(hook),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, parts map[string][]int32) {
			if len(parts[a.Topic]) > 0 {
				hook.assign.Do(func() { close(hook.assigned) })
			}
		}),
	)
	cl, err := newClient(a, opts...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout(a))
	defer cancel()
	polled := make(chan []*kgo.Record, 1)
	pollErr := make(chan error, 1)
	go func() {
		got, err := pollUntil(ctx, cl, nil, len(a.Messages))
		polled <- got
		pollErr <- err
	}()
	select {
	case <-hook.sent:
	case <-ctx.Done():
		return nil, fmt.Errorf("the consumer did not start fetching %s: %w", a.Topic, ctx.Err())
	}
	produceArgs := *a
	produceArgs.Compression, produceArgs.Idempotent, produceArgs.FlushEach, produceArgs.Acks = nil, nil, false, "all"
	if _, err := produce(&produceArgs, a.Topic, a.Messages); err != nil {
		return nil, err
	}
	got := <-polled
	if err := <-pollErr; err != nil {
		return nil, err
	}
	return recordsOf(got), nil
}

func offsetsForTimes(a *args) (any, error) {
	cl, err := newClient(a)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), timeout(a))
	defer cancel()
	result := map[string]*int64{}
	for p, ts := range a.Times {
		n, err := strconv.Atoi(p)
		if err != nil {
			return nil, err
		}
		listed, err := adm.ListOffsetsAfterMilli(ctx, ts, a.Topic)
		if err != nil {
			return nil, err
		}
		o, ok := listed.Lookup(a.Topic, int32(n))
		if !ok {
			return nil, fmt.Errorf("no answer for %s[%d]", a.Topic, n)
		}
		if o.Err != nil {
			return nil, o.Err
		}
		if o.Offset >= 0 {
			offset := o.Offset
			result[p] = &offset
		} else {
			result[p] = nil
		}
	}
	return result, nil
}

// member runs a group member until it is stopped: it polls, commits what it polled, reports the records,
// then lets a pending rebalance go on (so no partition changes owner with records read but not committed).
func member(id int64, a *args) error {
	ctx, cancel := context.WithCancel(context.Background())
	members.Store(id, cancel)
	defer members.Delete(id)
	defer cancel()
	var mu sync.Mutex
	owned := map[int32]bool{}
	report := func() {
		parts := []int32{}
		for p := range owned {
			parts = append(parts, p)
		}
		sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
		emit(map[string]any{"id": id, "event": "assigned", "partitions": parts})
	}
	change := func(parts map[string][]int32, add bool) {
		mu.Lock()
		defer mu.Unlock()
		for _, p := range parts[a.Topic] {
			if add {
				owned[p] = true
			} else {
				delete(owned, p)
			}
		}
		report()
	}
	opts := append(groupOpts(a, kgo.NewOffset().AtStart()),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, p map[string][]int32) { change(p, true) }),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, p map[string][]int32) { change(p, false) }),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, p map[string][]int32) { change(p, false) }),
	)
	cl, err := newClient(a, opts...)
	if err != nil {
		return err
	}
	defer cl.Close() // leaves the group
	for ctx.Err() == nil {
		fetches := cl.PollFetches(ctx)
		var failed error
		fetches.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.Canceled) && failed == nil {
				failed = fmt.Errorf("fetching %s[%d]: %w", topic, p, err)
			}
		})
		if failed != nil {
			cl.AllowRebalance()
			return failed
		}
		if rs := fetches.Records(); len(rs) > 0 {
			commitCtx, cancelCommit := context.WithTimeout(context.Background(), timeout(a))
			err := cl.CommitRecords(commitCtx, rs...)
			cancelCommit()
			if err != nil {
				cl.AllowRebalance()
				return err
			}
			emit(map[string]any{"id": id, "event": "records", "records": recordsOf(rs)})
		}
		cl.AllowRebalance()
	}
	return nil
}
