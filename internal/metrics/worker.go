// Package metrics is a worker's Prometheus metrics and the HTTP listener
// that serves them (and, when asked, pprof): chunk outcomes, encode time,
// compression, bytes, tasks, the store's figures, and the standard gRPC
// server metrics of go-grpc-middleware. Everything lives in the Worker's
// own registry, never the global one. The store and the server are read
// through hooks (WorkerConfig), so that neither imports Prometheus.
package metrics

import (
	"sync"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc"

	"github.com/videoshard/videoshard/grpcapi"
)

// Namespace prefixes the worker's own metric names.
const Namespace = "videoshard"

// TaskFigures are the encode slots and the queue, as the server counts them.
type TaskFigures struct {
	Active, Queued       int
	Slots, QueueCapacity int // the limits Active and Queued reach
}

// StoreFigures are the store's, read once per scrape.
type StoreFigures struct {
	// Bytes and Chunks are the committed shards'.
	Bytes, Chunks int64
	// FreeBytes and DiskBytes are the filesystem's under the store (0:
	// unknown).
	FreeBytes, DiskBytes int64
	// Evictions counts chunks evicted to make room, since start.
	Evictions int64
	// Corrupted counts shard versions found corrupt since start;
	// Quarantined the entries in quarantine now.
	Corrupted, Quarantined int64
}

// WorkerConfig is what the metrics read and label with.
type WorkerConfig struct {
	// Encoder and Codec label failed chunk calls, which name no shard: the
	// worker's encoder and default codec.
	Encoder, Codec string
	// Tasks and Store are read at every scrape; nil reports nothing.
	Tasks func() TaskFigures
	Store func() StoreFigures
}

// Worker holds a worker's metrics. It is a grpcapi.ChunkObserver.
type Worker struct {
	cfg  WorkerConfig
	reg  *prometheus.Registry
	grpc *grpcprom.ServerMetrics

	chunks        *prometheus.CounterVec   // encoder, codec, outcome
	encodeSeconds *prometheus.HistogramVec // encoder, codec
	ratio         *prometheus.HistogramVec // encoder, codec
	bytesIn       prometheus.Counter
	bytesOut      prometheus.Counter

	pairMu sync.Mutex
	pairs  map[[2]string]struct{} // the encoder/codec pairs labelled; guarded by pairMu
}

// maxLabelPairs bounds the encoder/codec pairs the chunk metrics are
// labelled with. A reused chunk's come from its metadata, which for a
// replicated copy a peer wrote: beyond the bound they count as
// otherLabel, so that no peer can grow the series without bound.
const maxLabelPairs = 64

// otherLabel is the encoder and codec of the pairs past maxLabelPairs.
const otherLabel = "other"

var _ grpcapi.ChunkObserver = (*Worker)(nil)

// NewWorker returns a worker's metrics in a registry of their own, with
// the Go runtime's and the process's.
func NewWorker(cfg WorkerConfig) *Worker {
	labels := []string{"encoder", "codec"}
	w := &Worker{
		cfg: cfg,
		reg: prometheus.NewRegistry(),
		grpc: grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(
			// From a health check to a long encode.
			grpcprom.WithHistogramBuckets([]float64{.001, .005, .025, .1, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}))),
		chunks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "chunks_processed_total",
			Help: "Chunk calls (ProcessChunk, UploadChunk) by outcome: stored (encoded), reused (already stored), or the gRPC code of a failure.",
		}, append(labels, "outcome")),
		encodeSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "encode_seconds",
			Help:    "Time of each encode, as the encoder measured it.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2.5, 12), // 10 ms to about 10 min
		}, labels),
		ratio: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "compression_ratio",
			Help:    "Shard size / chunk size of each encode.",
			Buckets: []float64{.02, .05, .1, .2, .3, .4, .5, .6, .7, .8, .9, 1, 1.25, 1.5, 2},
		}, labels),
		bytesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "chunk_bytes_in_total",
			Help: "Bytes of the chunks encoded.",
		}),
		bytesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "chunk_bytes_out_total",
			Help: "Bytes of the shards those encodes made.",
		}),
	}
	w.reg.MustRegister(w.grpc, w.chunks, w.encodeSeconds, w.ratio, w.bytesIn, w.bytesOut,
		newFigures(cfg),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return w
}

// Registry is the worker's registry, for Handler and tests.
func (w *Worker) Registry() *prometheus.Registry { return w.reg }

// ServerOptions adds the gRPC server metrics' interceptors to a worker's
// (grpcapi.ServerOptions: after the access log, before auth), and the
// worker's chunk observer.
func (w *Worker) ServerOptions() []grpcapi.Option {
	return []grpcapi.Option{
		grpcapi.WithInterceptors(w.grpc.UnaryServerInterceptor(), w.grpc.StreamServerInterceptor()),
		grpcapi.WithChunkObserver(w),
	}
}

// InitializeGRPC sets every method of gs's services to zero, so that a
// method never called is reported (and rates over it are 0, not absent).
func (w *Worker) InitializeGRPC(gs *grpc.Server) { w.grpc.InitializeMetrics(gs) }

// ObserveChunk counts one chunk call.
func (w *Worker) ObserveChunk(c grpcapi.ChunkCall) {
	enc, codec := c.Encoder, c.Codec
	if enc == "" {
		enc, codec = w.cfg.Encoder, w.cfg.Codec
	}
	enc, codec = w.bounded(enc, codec)
	w.chunks.WithLabelValues(enc, codec, c.Outcome).Inc()
	if c.Outcome != grpcapi.ChunkStored {
		return
	}
	w.encodeSeconds.WithLabelValues(enc, codec).Observe(c.EncodeSeconds)
	if c.InputBytes > 0 {
		w.ratio.WithLabelValues(enc, codec).Observe(float64(c.OutputBytes) / float64(c.InputBytes))
	}
	w.bytesIn.Add(float64(c.InputBytes))
	w.bytesOut.Add(float64(c.OutputBytes))
}

// bounded returns enc and codec, or otherLabel for both once
// maxLabelPairs other pairs were labelled. The worker's own pair is
// always kept.
func (w *Worker) bounded(enc, codec string) (string, string) {
	k := [2]string{enc, codec}
	w.pairMu.Lock()
	defer w.pairMu.Unlock()
	if w.pairs == nil {
		w.pairs = map[[2]string]struct{}{{w.cfg.Encoder, w.cfg.Codec}: {}}
	}
	if _, ok := w.pairs[k]; ok {
		return enc, codec
	}
	if len(w.pairs) >= maxLabelPairs {
		return otherLabel, otherLabel
	}
	w.pairs[k] = struct{}{}
	return enc, codec
}

// figures collects the hooks' figures, each hook called once per scrape.
type figures struct {
	cfg                                 WorkerConfig
	active, queued, slots, queueCap     *prometheus.Desc
	storeBytes, storeChunks, free, disk *prometheus.Desc
	evictions, corrupted, quarantined   *prometheus.Desc
}

func newFigures(cfg WorkerConfig) *figures {
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", name), help, nil, nil)
	}
	return &figures{
		cfg:         cfg,
		active:      desc("tasks_active", "Encodes in flight."),
		queued:      desc("tasks_queued", "Chunks waiting for an encode slot."),
		slots:       desc("task_slots", "Encode slots (limits.max_concurrent_tasks)."),
		queueCap:    desc("task_queue_capacity", "Queue places before chunks are refused ResourceExhausted (limits.max_queued_tasks)."),
		storeBytes:  desc("store_bytes", "Bytes of the committed shards."),
		storeChunks: desc("store_chunks", "Committed chunks."),
		free:        desc("store_free_bytes", "Free bytes of the store's filesystem, for unprivileged writers."),
		disk:        desc("store_disk_bytes", "Size of the store's filesystem."),
		evictions:   desc("store_evictions_total", "Chunks evicted to make room, since start."),
		corrupted:   desc("store_corrupted_shards_total", "Shard versions found corrupt (by reads or scrubs) and taken out of the store, since start."),
		quarantined: desc("store_quarantined_shards", "Entries in the store's quarantine directory."),
	}
}

func (f *figures) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{f.active, f.queued, f.slots, f.queueCap, f.storeBytes,
		f.storeChunks, f.free, f.disk, f.evictions, f.corrupted, f.quarantined} {
		ch <- d
	}
}

func (f *figures) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
	}
	counter := func(d *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	if f.cfg.Tasks != nil {
		t := f.cfg.Tasks()
		gauge(f.active, int64(t.Active))
		gauge(f.queued, int64(t.Queued))
		gauge(f.slots, int64(t.Slots))
		gauge(f.queueCap, int64(t.QueueCapacity))
	}
	if f.cfg.Store != nil {
		s := f.cfg.Store()
		gauge(f.storeBytes, s.Bytes)
		gauge(f.storeChunks, s.Chunks)
		if s.DiskBytes > 0 {
			gauge(f.free, s.FreeBytes)
			gauge(f.disk, s.DiskBytes)
		}
		counter(f.evictions, s.Evictions)
		counter(f.corrupted, s.Corrupted)
		gauge(f.quarantined, s.Quarantined)
	}
}

// serverTimeouts bound the metrics listener's connections: a scraper that
// stalls must not hold one for ever. Writes allow a 30 s CPU profile.
const (
	readHeaderTimeout = 5 * time.Second
	writeTimeout      = 60 * time.Second
	idleTimeout       = 2 * time.Minute
)
