// Command loadtest drives a running simulated worker with many concurrent
// clients doing a mix of RPCs for a fixed time, checks every byte it reads
// back, and reports throughput, latency percentiles per operation, errors by
// status code and the worker's memory.
//
//	loadtest -addr 127.0.0.1:50061 -clients 64 -duration 30s -chunk-bytes 1MiB \
//	    -mix process=50,download=30,list=10,health=10 [-pid WORKER_PID]
//
// Each client owns one video id and writes its chunks itself, so it knows
// exactly what every chunk must hold: the simulated encoder keeps, of each
// 64 KiB input block, its first round(ratio*len) bytes, and the client
// computes that output and its SHA-256 before sending. Downloads, listings
// and metadata must agree with the last acknowledged write, byte for byte.
// A write that fails (other than an overload refusal) makes that chunk's
// content unknown, so the client retires the chunk and writes new ones.
//
// ResourceExhausted is counted as overload, not as an error; the client
// then waits the server's retry hint (at most 1 s). The exit status is 0
// only if there was no data error and no other RPC error; 1 otherwise; 2 for
// bad flags. scripts/loadtest.sh (make loadtest) starts a worker for it.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/videoshard/videoshard/encode"
	pb "github.com/videoshard/videoshard/proto"
)

// The operations a client can do, as named in -mix.
const (
	opProcess  = "process"  // unary ProcessChunk
	opUpload   = "upload"   // streaming UploadChunk
	opDownload = "download" // streaming DownloadShard
	opGet      = "get"      // unary GetShard
	opList     = "list"     // ListShards of the client's video
	opMetadata = "metadata" // GetVideoMetadata of the client's video
	opHealth   = "health"   // CheckHealth
)

var allOps = []string{opProcess, opUpload, opDownload, opGet, opList, opMetadata, opHealth}

type options struct {
	addr       string
	clients    int
	conns      int
	duration   time.Duration
	chunkBytes int64
	chunks     int
	mix        []weighted
	mixText    string
	ratio      float64
	frameBytes int
	rpcTimeout time.Duration
	pid        int
	prefix     string
	verify     bool
	seed       uint64
}

type weighted struct {
	op     string
	weight int
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := run(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
	rep.print(os.Stdout)
	if rep.failed() {
		fmt.Println("FAIL")
		os.Exit(1)
	}
	fmt.Println("PASS")
}

func parseFlags(args []string) (options, error) {
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	o := options{}
	var chunk string
	fs.StringVar(&o.addr, "addr", "", "worker address host:port (required; scripts/loadtest.sh starts one)")
	fs.IntVar(&o.clients, "clients", 64, "concurrent clients")
	fs.IntVar(&o.conns, "conns", 1, "gRPC connections shared by the clients (a master uses one per worker)")
	fs.DurationVar(&o.duration, "duration", 30*time.Second, "how long clients start new operations")
	fs.StringVar(&chunk, "chunk-bytes", "1MiB", "size of each written chunk (B, KiB, MiB suffixes)")
	fs.IntVar(&o.chunks, "chunks", 8, "chunk indexes each client rotates through (writes replace earlier ones)")
	fs.StringVar(&o.mixText, "mix", "process=50,download=30,list=10,health=10",
		"operation weights: "+strings.Join(allOps, ", "))
	fs.Float64Var(&o.ratio, "ratio", encode.DefaultSimulatedConfig().Ratio, "the worker's simulated.ratio, to compute the expected shards")
	fs.IntVar(&o.frameBytes, "frame-bytes", 256<<10, "data frame size of UploadChunk")
	fs.DurationVar(&o.rpcTimeout, "rpc-timeout", time.Minute, "deadline of each RPC")
	fs.IntVar(&o.pid, "pid", 0, "the worker's process id, to read its peak RSS from /proc (optional)")
	fs.StringVar(&o.prefix, "video-prefix", "", "prefix of the clients' video ids (default: load-<random>)")
	fs.BoolVar(&o.verify, "verify", true, "after the run, read back every acknowledged chunk")
	fs.Uint64Var(&o.seed, "seed", 0, "random seed (0: from the clock)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	switch {
	case o.addr == "":
		return o, errors.New("-addr is required")
	case o.clients < 1 || o.conns < 1 || o.chunks < 1:
		return o, errors.New("-clients, -conns and -chunks must be positive")
	case o.duration <= 0 || o.rpcTimeout <= 0:
		return o, errors.New("-duration and -rpc-timeout must be positive")
	case !(o.ratio > 0 && o.ratio <= 1):
		return o, errors.New("-ratio must be in (0, 1]")
	case o.frameBytes < 1:
		return o, errors.New("-frame-bytes must be positive")
	}
	if o.chunkBytes, err = parseSize(chunk); err != nil || o.chunkBytes < 64 || o.chunkBytes > 1<<30 {
		return o, fmt.Errorf("-chunk-bytes %q: want a size from 64B to 1GiB", chunk)
	}
	if o.mix, err = parseMix(o.mixText); err != nil {
		return o, fmt.Errorf("-mix: %w", err)
	}
	if o.seed == 0 {
		o.seed = uint64(time.Now().UnixNano())
	}
	if o.prefix == "" {
		o.prefix = fmt.Sprintf("load-%08x", uint32(o.seed))
	}
	return o, nil
}

func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"B", 1}} {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = strings.TrimSpace(num), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}

func parseMix(s string) ([]weighted, error) {
	var mix []weighted
	seen := map[string]bool{}
	total := 0
	for part := range strings.SplitSeq(s, ",") {
		name, w, ok := strings.Cut(strings.TrimSpace(part), "=")
		n, err := strconv.Atoi(strings.TrimSpace(w))
		name = strings.TrimSpace(name)
		if !ok || err != nil || n < 0 {
			return nil, fmt.Errorf("%q is not op=weight", part)
		}
		if !contains(allOps, name) {
			return nil, fmt.Errorf("unknown operation %q (want %s)", name, strings.Join(allOps, ", "))
		}
		if seen[name] {
			return nil, fmt.Errorf("%s given twice", name)
		}
		seen[name] = true
		if n > 0 {
			mix = append(mix, weighted{name, n})
			total += n
		}
	}
	if total == 0 {
		return nil, errors.New("no operation has a positive weight")
	}
	return mix, nil
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

// run connects, checks the worker is simulated, runs the clients and the
// samplers, then verifies what was acknowledged.
func run(ctx context.Context, o options) (*report, error) {
	maxMsg := int(o.chunkBytes) + 1<<20
	var conns []*grpc.ClientConn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range o.conns {
		c, err := grpc.NewClient(o.addr,
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMsg), grpc.MaxCallSendMsgSize(maxMsg)))
		if err != nil {
			return nil, err
		}
		conns = append(conns, c)
	}
	first := pb.NewVideoProcessingServiceClient(conns[0])
	hctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	h, err := first.CheckHealth(hctx, &pb.HealthCheckRequest{MasterId: "loadtest"}, grpc.WaitForReady(true))
	cancel()
	if err != nil {
		return nil, fmt.Errorf("worker %s: CheckHealth: %w", o.addr, err)
	}
	if h.GetEncoder() != pb.EncoderSimulated {
		return nil, fmt.Errorf("worker %s runs the %q encoder: only a simulated worker's output can be checked byte for byte", o.addr, h.GetEncoder())
	}
	if h.GetMaxChunkBytes() > 0 && o.chunkBytes > h.GetMaxChunkBytes() {
		return nil, fmt.Errorf("-chunk-bytes %d is over the worker's limit %d", o.chunkBytes, h.GetMaxChunkBytes())
	}
	if needsUnary(o.mix) && h.GetMaxUnaryChunkBytes() > 0 && o.chunkBytes > h.GetMaxUnaryChunkBytes() {
		return nil, fmt.Errorf("-chunk-bytes %d is over the worker's unary limit %d: use the upload operation", o.chunkBytes, h.GetMaxUnaryChunkBytes())
	}

	rep := newReport(o, h)
	mem := &memSampler{pid: o.pid, client: first}
	sctx, stopSampling := context.WithCancel(context.Background())
	var samplers sync.WaitGroup
	samplers.Add(1)
	go func() {
		defer samplers.Done()
		mem.run(sctx)
	}()

	deadline := time.Now().Add(o.duration)
	clients := make([]*client, o.clients)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range clients {
		c := newClient(o, i, pb.NewVideoProcessingServiceClient(conns[i%len(conns)]), rep)
		clients[i] = c
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.loop(ctx, deadline)
		}()
	}
	wg.Wait()
	rep.elapsed = time.Since(start)
	if ctx.Err() != nil {
		rep.interrupted = true
	}

	if o.verify && ctx.Err() == nil {
		vstart := time.Now()
		for _, c := range clients {
			c.verifyAll(ctx)
		}
		rep.verifyTime = time.Since(vstart)
	}
	stopSampling()
	samplers.Wait()
	mem.finish()
	rep.mem = mem
	for _, c := range clients {
		rep.merge(c)
	}
	return rep, nil
}

func needsUnary(mix []weighted) bool {
	for _, w := range mix {
		if w.op == opProcess || w.op == opGet {
			return true
		}
	}
	return false
}

// chunkState is what a client knows about one of its chunks.
type chunkState struct {
	sum  string // hex SHA-256 of the acknowledged shard
	size int64  // its length
}

// client is one simulated master: one video id, sequential operations.
type client struct {
	o     options
	id    int
	video string
	rpc   pb.VideoProcessingServiceClient
	rep   *report
	rng   *rand.Rand

	input   []byte // reused for every write; stamped so each write differs
	scratch []byte // the expected output

	slots   []int32              // chunk indexes in rotation
	next    int                  // next slot to write
	nextNew int32                // next unused chunk index
	acked   map[int32]chunkState // last acknowledged version of each chunk
	retired map[int32]bool       // chunks whose content a failed write made unknown
	seq     uint64

	lat         map[string][]time.Duration // successful operations
	overload    map[string]int
	errs        map[string]map[codes.Code]int
	dataErrs    []string
	verified    int
	bytesUp     int64
	bytesDown   int64
	maxHealthMB float64
}

func newClient(o options, id int, rpc pb.VideoProcessingServiceClient, rep *report) *client {
	c := &client{
		o:        o,
		id:       id,
		video:    fmt.Sprintf("%s-c%03d.mp4", o.prefix, id),
		rpc:      rpc,
		rep:      rep,
		rng:      rand.New(rand.NewPCG(o.seed, uint64(id)+1)),
		input:    make([]byte, o.chunkBytes),
		acked:    map[int32]chunkState{},
		retired:  map[int32]bool{},
		lat:      map[string][]time.Duration{},
		overload: map[string]int{},
		errs:     map[string]map[codes.Code]int{},
	}
	for i := range o.chunks {
		c.slots = append(c.slots, int32(i))
	}
	c.nextNew = int32(o.chunks)
	fillRandom(c.rng, c.input)
	return c
}

func (c *client) pick() string {
	total := 0
	for _, w := range c.o.mix {
		total += w.weight
	}
	n := c.rng.IntN(total)
	for _, w := range c.o.mix {
		if n < w.weight {
			return w.op
		}
		n -= w.weight
	}
	return c.o.mix[len(c.o.mix)-1].op
}

func (c *client) loop(ctx context.Context, deadline time.Time) {
	for ctx.Err() == nil && time.Now().Before(deadline) {
		op := c.pick()
		if (op == opDownload || op == opGet) && len(c.acked) == 0 {
			op = c.writeOp() // nothing to read yet
		}
		c.do(ctx, op)
	}
}

// writeOp is the write operation in the mix, for a client with nothing to
// read yet.
func (c *client) writeOp() string {
	for _, w := range c.o.mix {
		if w.op == opUpload {
			return opUpload
		}
	}
	return opProcess
}

func (c *client) do(ctx context.Context, op string) {
	rctx, cancel := context.WithTimeout(ctx, c.o.rpcTimeout)
	defer cancel()
	start := time.Now()
	var err error
	switch op {
	case opProcess, opUpload:
		err = c.write(rctx, op)
	case opDownload, opGet:
		err = c.read(rctx, op)
	case opList:
		err = c.list(rctx)
	case opMetadata:
		err = c.metadata(rctx)
	case opHealth:
		err = c.health(rctx)
	}
	elapsed := time.Since(start)
	var de *dataError
	switch {
	case err == nil:
		c.lat[op] = append(c.lat[op], elapsed)
	case errors.As(err, &de):
		c.dataErrs = append(c.dataErrs, fmt.Sprintf("%s %s: %s", op, c.video, de.msg))
	case status.Code(err) == codes.ResourceExhausted:
		c.overload[op]++
		c.backoff(ctx, err)
	case ctx.Err() != nil:
		// Interrupted by the user: not the worker's fault.
	default:
		code := status.Code(err)
		if code == codes.DataLoss {
			c.dataErrs = append(c.dataErrs, fmt.Sprintf("%s %s: %v", op, c.video, err))
		}
		if c.errs[op] == nil {
			c.errs[op] = map[codes.Code]int{}
		}
		if c.errs[op][code] < 3 {
			c.rep.logf("%s %s: %v", op, c.video, err)
		}
		c.errs[op][code]++
	}
}

// backoff waits the server's retry hint, at most a second.
func (c *client) backoff(ctx context.Context, err error) {
	d := 100 * time.Millisecond
	for _, det := range status.Convert(err).Details() {
		if ri, ok := det.(*errdetails.RetryInfo); ok {
			d = ri.GetRetryDelay().AsDuration()
		}
	}
	d = min(d, time.Second)
	d = d/2 + time.Duration(c.rng.Int64N(int64(d/2)+1))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// dataError is a response that disagrees with what the client wrote.
type dataError struct{ msg string }

func (e *dataError) Error() string { return e.msg }

func dataErrorf(format string, args ...any) error {
	return &dataError{fmt.Sprintf(format, args...)}
}

// write sends a new version of the next chunk in rotation.
func (c *client) write(ctx context.Context, op string) error {
	slot := c.next
	c.next = (c.next + 1) % len(c.slots)
	chunk := c.slots[slot]

	c.seq++
	stamp := fmt.Sprintf("%s/%d/%d/", c.video, chunk, c.seq)
	copy(c.input, stamp)
	c.scratch = simulatedOutput(c.scratch[:0], c.input, c.o.ratio)
	want := chunkState{sum: sha(c.scratch), size: int64(len(c.scratch))}

	var resp *pb.ProcessChunkResponse
	var err error
	if op == opProcess {
		resp, err = c.rpc.ProcessChunk(ctx, &pb.ProcessChunkRequest{VideoId: c.video, ChunkIndex: chunk, ChunkData: c.input})
	} else {
		resp, err = c.upload(ctx, chunk)
	}
	if err != nil {
		if status.Code(err) != codes.ResourceExhausted || !isBusy(err) {
			// The write may or may not have landed: never trust this
			// chunk again, and rotate a fresh one in.
			c.retired[chunk] = true
			delete(c.acked, chunk)
			c.slots[slot] = c.nextNew
			c.nextNew++
		}
		return err
	}
	c.bytesUp += int64(len(c.input))
	if resp.GetChecksumSha256() != want.sum || resp.GetEncodedSize() != want.size ||
		resp.GetOriginalSize() != int64(len(c.input)) || !resp.GetSuccess() {
		c.retired[chunk] = true
		delete(c.acked, chunk)
		return dataErrorf("chunk %d: acknowledged %d->%d bytes sha %s; expected %d->%d sha %s",
			chunk, resp.GetOriginalSize(), resp.GetEncodedSize(), resp.GetChecksumSha256(), len(c.input), want.size, want.sum)
	}
	c.acked[chunk] = want
	return nil
}

// isBusy reports whether a ResourceExhausted error is the worker's
// overload refusal (nothing written), as opposed to a full disk.
func isBusy(err error) bool {
	for _, det := range status.Convert(err).Details() {
		if _, ok := det.(*errdetails.RetryInfo); ok {
			return true
		}
	}
	return strings.Contains(status.Convert(err).Message(), "busy")
}

func (c *client) upload(ctx context.Context, chunk int32) (*pb.ProcessChunkResponse, error) {
	stream, err := c.rpc.UploadChunk(ctx)
	if err != nil {
		return nil, err
	}
	h := &pb.UploadHeader{VideoId: c.video, ChunkIndex: chunk, TotalSize: int64(len(c.input))}
	if err := stream.Send(&pb.UploadChunkRequest{Frame: &pb.UploadChunkRequest_Header{Header: h}}); err != nil && err != io.EOF {
		return nil, err
	}
	for off := 0; off < len(c.input); off += c.o.frameBytes {
		end := min(off+c.o.frameBytes, len(c.input))
		if err := stream.Send(&pb.UploadChunkRequest{Frame: &pb.UploadChunkRequest_Data{Data: c.input[off:end]}}); err != nil {
			if err == io.EOF {
				break // the server has answered; CloseAndRecv has its status
			}
			return nil, err
		}
	}
	return stream.CloseAndRecv()
}

// randomAcked returns one of the client's acknowledged chunks.
func (c *client) randomAcked() int32 {
	keys := make([]int32, 0, len(c.acked))
	for k := range c.acked {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	return keys[c.rng.IntN(len(keys))]
}

// read fetches an acknowledged chunk and compares it with what was written.
func (c *client) read(ctx context.Context, op string) error {
	chunk := c.randomAcked()
	return c.readChunk(ctx, op, chunk, c.acked[chunk])
}

func (c *client) readChunk(ctx context.Context, op string, chunk int32, want chunkState) error {
	idx := chunk
	req := &pb.GetShardRequest{VideoId: c.video, ChunkIndex: &idx}
	var meta *pb.ChunkMetadata
	var n int64
	h := sha256.New()
	if op == opGet {
		resp, err := c.rpc.GetShard(ctx, req)
		if err != nil {
			return err
		}
		meta = resp.GetMetadata()
		h.Write(resp.GetShardData())
		n = int64(len(resp.GetShardData()))
	} else {
		stream, err := c.rpc.DownloadShard(ctx, req)
		if err != nil {
			return err
		}
		for {
			msg, err := stream.Recv()
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
			if msg.GetMetadata() != nil {
				if meta != nil {
					return dataErrorf("chunk %d: a second metadata message", chunk)
				}
				meta = msg.GetMetadata()
			}
			h.Write(msg.GetData())
			n += int64(len(msg.GetData()))
		}
	}
	c.bytesDown += n
	got := hex.EncodeToString(h.Sum(nil))
	if got != want.sum || n != want.size {
		return dataErrorf("chunk %d: read %d bytes sha %s; acknowledged %d bytes sha %s", chunk, n, got, want.size, want.sum)
	}
	if meta.GetChecksumSha256() != want.sum || meta.GetEncodedSize() != want.size ||
		meta.GetVideoId() != c.video || meta.GetChunkIndex() != chunk {
		return dataErrorf("chunk %d: metadata says %s chunk %d, %d bytes sha %s; acknowledged %d bytes sha %s",
			chunk, meta.GetVideoId(), meta.GetChunkIndex(), meta.GetEncodedSize(), meta.GetChecksumSha256(), want.size, want.sum)
	}
	return nil
}

// list checks that the client's video lists exactly its acknowledged chunks
// (and perhaps retired ones, whose content is unknown).
func (c *client) list(ctx context.Context) error {
	resp, err := c.rpc.ListShards(ctx, &pb.ListShardsRequest{VideoId: c.video})
	if status.Code(err) == codes.NotFound && len(c.acked) == 0 {
		return nil
	}
	if err != nil {
		return err
	}
	got := map[int32]*pb.ChunkInfo{}
	for _, v := range resp.GetVideos() {
		if v.GetVideoId() != c.video {
			return dataErrorf("listing of %s includes video %s", c.video, v.GetVideoId())
		}
		for _, ci := range v.GetChunks() {
			got[ci.GetChunkIndex()] = ci
		}
	}
	return compareChunks(c, got, func(ci *pb.ChunkInfo) (string, int64) { return ci.GetChecksumSha256(), ci.GetSizeBytes() })
}

func (c *client) metadata(ctx context.Context) error {
	resp, err := c.rpc.GetVideoMetadata(ctx, &pb.GetVideoMetadataRequest{VideoId: c.video})
	if status.Code(err) == codes.NotFound && len(c.acked) == 0 {
		return nil
	}
	if err != nil {
		return err
	}
	got := map[int32]*pb.ChunkMetadata{}
	for _, m := range resp.GetChunksMetadata() {
		if m.GetVideoId() != c.video {
			return dataErrorf("metadata of %s includes video %s", c.video, m.GetVideoId())
		}
		got[m.GetChunkIndex()] = m
	}
	return compareChunks(c, got, func(m *pb.ChunkMetadata) (string, int64) { return m.GetChecksumSha256(), m.GetEncodedSize() })
}

// compareChunks checks a listing against the acknowledged chunks: each is
// there with its checksum and size, and nothing else but retired chunks.
func compareChunks[T any](c *client, got map[int32]T, fields func(T) (string, int64)) error {
	for chunk, want := range c.acked {
		g, ok := got[chunk]
		if !ok {
			return dataErrorf("chunk %d acknowledged but not listed", chunk)
		}
		if sum, size := fields(g); sum != want.sum || size != want.size {
			return dataErrorf("chunk %d listed with %d bytes sha %s; acknowledged %d bytes sha %s", chunk, size, sum, want.size, want.sum)
		}
	}
	for chunk := range got {
		if _, ok := c.acked[chunk]; !ok && !c.retired[chunk] {
			return dataErrorf("chunk %d listed but never acknowledged", chunk)
		}
	}
	return nil
}

func (c *client) health(ctx context.Context) error {
	h, err := c.rpc.CheckHealth(ctx, &pb.HealthCheckRequest{MasterId: "loadtest"})
	if err != nil {
		return err
	}
	if !h.GetIsHealthy() {
		return status.Errorf(codes.Unavailable, "worker reports unhealthy: %s", h.GetMessage())
	}
	c.maxHealthMB = max(c.maxHealthMB, float64(h.GetMemoryUsageBytes())/(1<<20))
	return nil
}

// verifyAll reads back every acknowledged chunk once the load has stopped.
func (c *client) verifyAll(ctx context.Context) {
	for chunk, want := range c.acked {
		rctx, cancel := context.WithTimeout(ctx, c.o.rpcTimeout)
		err := c.readChunk(rctx, opDownload, chunk, want)
		cancel()
		var de *dataError
		switch {
		case err == nil:
			c.verified++
		case errors.As(err, &de):
			c.dataErrs = append(c.dataErrs, fmt.Sprintf("final read-back %s: %s", c.video, de.msg))
		default:
			c.dataErrs = append(c.dataErrs, fmt.Sprintf("final read-back %s chunk %d: %v", c.video, chunk, err))
		}
	}
}

// simulatedOutput appends to dst what the simulated encoder makes of in:
// the first round(ratio*len) bytes of each 64 KiB block. It is written from
// the encoder's documentation, to serve as an independent oracle.
func simulatedOutput(dst, in []byte, ratio float64) []byte {
	const block = 64 << 10
	for off := 0; off < len(in); off += block {
		b := in[off:min(off+block, len(in))]
		dst = append(dst, b[:int(math.Round(ratio*float64(len(b))))]...)
	}
	return dst
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func fillRandom(rng *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
}

// memSampler follows the worker's memory: VmRSS/VmHWM from /proc when the
// pid is known, and CheckHealth's memory_usage_bytes every second.
type memSampler struct {
	pid    int
	client pb.VideoProcessingServiceClient

	mu          sync.Mutex
	healthMaxMB float64
	rssMaxMB    float64
	hwmMB       float64
	rssEndMB    float64
	samples     atomic.Int64
}

func (m *memSampler) run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		m.sample(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (m *memSampler) sample(ctx context.Context) {
	m.samples.Add(1)
	if m.pid > 0 {
		if rss, err := procStatusMiB(m.pid, "VmRSS"); err == nil {
			m.mu.Lock()
			m.rssMaxMB = max(m.rssMaxMB, rss)
			m.mu.Unlock()
		}
	}
	hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if h, err := m.client.CheckHealth(hctx, &pb.HealthCheckRequest{MasterId: "loadtest-memory"}); err == nil {
		m.mu.Lock()
		m.healthMaxMB = max(m.healthMaxMB, float64(h.GetMemoryUsageBytes())/(1<<20))
		m.mu.Unlock()
	}
}

func (m *memSampler) finish() {
	if m.pid <= 0 {
		return
	}
	m.hwmMB, _ = procStatusMiB(m.pid, "VmHWM")
	m.rssEndMB, _ = procStatusMiB(m.pid, "VmRSS")
}

// procStatusMiB reads a "Vm..." field of /proc/<pid>/status, in MiB.
func procStatusMiB(pid int, field string) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, field+":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			break
		}
		kib, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			break
		}
		return float64(kib) / 1024, nil
	}
	return 0, fmt.Errorf("/proc/%d/status has no %s", pid, field)
}

// report gathers every client's results.
type report struct {
	o           options
	worker      *pb.HealthCheckResponse
	elapsed     time.Duration
	verifyTime  time.Duration
	interrupted bool
	mem         *memSampler

	logMu  sync.Mutex
	logged int

	lat         map[string][]time.Duration
	overload    map[string]int
	errs        map[string]map[codes.Code]int
	dataErrs    []string
	verified    int
	bytesUp     int64
	bytesDown   int64
	maxHealthMB float64
}

func newReport(o options, h *pb.HealthCheckResponse) *report {
	return &report{o: o, worker: h, lat: map[string][]time.Duration{}, overload: map[string]int{}, errs: map[string]map[codes.Code]int{}}
}

// logf prints a sample of errors as they happen, to stderr.
func (r *report) logf(format string, args ...any) {
	r.logMu.Lock()
	defer r.logMu.Unlock()
	if r.logged < 20 {
		fmt.Fprintf(os.Stderr, "loadtest: "+format+"\n", args...)
	}
	r.logged++
}

func (r *report) merge(c *client) {
	for op, ds := range c.lat {
		r.lat[op] = append(r.lat[op], ds...)
	}
	for op, n := range c.overload {
		r.overload[op] += n
	}
	for op, m := range c.errs {
		if r.errs[op] == nil {
			r.errs[op] = map[codes.Code]int{}
		}
		for code, n := range m {
			r.errs[op][code] += n
		}
	}
	r.dataErrs = append(r.dataErrs, c.dataErrs...)
	r.verified += c.verified
	r.bytesUp += c.bytesUp
	r.bytesDown += c.bytesDown
	r.maxHealthMB = max(r.maxHealthMB, c.maxHealthMB)
}

func (r *report) errorCount() int {
	n := 0
	for _, m := range r.errs {
		for _, k := range m {
			n += k
		}
	}
	return n
}

func (r *report) failed() bool {
	return len(r.dataErrs) > 0 || r.errorCount() > 0 || r.interrupted
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 1, 64) }

func (r *report) print(out io.Writer) {
	o := r.o
	secs := r.elapsed.Seconds()
	fmt.Fprintf(out, "loadtest: %s, %d clients over %d connection(s), %v (%.1fs elapsed), chunk %d bytes, mix %s\n",
		o.addr, o.clients, o.conns, o.duration, secs, o.chunkBytes, o.mixText)
	fmt.Fprintf(out, "worker: %s, encoder %s, max_concurrent_tasks %d\n",
		r.worker.GetWorkerId(), r.worker.GetEncoder(), r.worker.GetMaxConcurrentTasks())
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "op\tok\tok/s\tp50 ms\tp99 ms\tmax ms\toverload\terrors\t")
	var okTotal, ovTotal int
	for _, op := range allOps {
		ds := r.lat[op]
		if len(ds) == 0 && r.overload[op] == 0 && len(r.errs[op]) == 0 {
			continue
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		errs := 0
		for _, n := range r.errs[op] {
			errs += n
		}
		okTotal += len(ds)
		ovTotal += r.overload[op]
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%s\t%s\t%s\t%d\t%d\t\n", op, len(ds), float64(len(ds))/secs,
			ms(percentile(ds, 0.50)), ms(percentile(ds, 0.99)), ms(percentile(ds, 1)), r.overload[op], errs)
	}
	fmt.Fprintf(tw, "all\t%d\t%.1f\t\t\t\t%d\t%d\t\n", okTotal, float64(okTotal)/secs, ovTotal, r.errorCount())
	tw.Flush()
	fmt.Fprintf(out, "bytes: %.1f MiB written (%.1f MiB/s), %.1f MiB read back during the run (%.1f MiB/s)\n",
		float64(r.bytesUp)/(1<<20), float64(r.bytesUp)/(1<<20)/secs, float64(r.bytesDown)/(1<<20), float64(r.bytesDown)/(1<<20)/secs)
	if p := r.lat[opProcess]; len(p) > 0 {
		fmt.Fprintf(out, "headline: ProcessChunk of %d-byte chunks p50 %s ms, p99 %s ms (%d calls)\n",
			o.chunkBytes, ms(percentile(p, 0.5)), ms(percentile(p, 0.99)), len(p))
	}
	if r.errorCount() == 0 {
		fmt.Fprintln(out, "errors by code: none")
	} else {
		fmt.Fprint(out, "errors by code:")
		for _, op := range allOps {
			for code, n := range r.errs[op] {
				fmt.Fprintf(out, " %s/%s=%d", op, code, n)
			}
		}
		fmt.Fprintln(out)
	}
	m := r.mem
	fmt.Fprintf(out, "worker memory: CheckHealth RSS max %.1f MiB (%d samples + health ops: %.1f MiB)",
		m.healthMaxMB, m.samples.Load(), r.maxHealthMB)
	if o.pid > 0 {
		fmt.Fprintf(out, "; /proc/%d: VmHWM %.1f MiB, VmRSS max sampled %.1f MiB, at end %.1f MiB", o.pid, m.hwmMB, m.rssMaxMB, m.rssEndMB)
	}
	fmt.Fprintln(out)
	if o.verify && !r.interrupted {
		fmt.Fprintf(out, "final read-back: %d acknowledged chunks, every byte checked, in %v\n", r.verified, r.verifyTime.Round(time.Millisecond))
	}
	fmt.Fprintf(out, "data errors: %d\n", len(r.dataErrs))
	for i, e := range r.dataErrs {
		if i == 20 {
			fmt.Fprintf(out, "  ... %d more\n", len(r.dataErrs)-20)
			break
		}
		fmt.Fprintln(out, "  "+e)
	}
	if r.interrupted {
		fmt.Fprintln(out, "interrupted")
	}
}
