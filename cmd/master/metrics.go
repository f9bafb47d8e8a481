package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/videoshard/videoshard/internal/fsutil"
	"github.com/videoshard/videoshard/master"
	"github.com/videoshard/videoshard/master/media"
)

// jobMetrics follows a job's events (master.JobConfig.OnEvent): as
// Prometheus metrics while it runs (--metrics-listen), and per chunk for
// the report written at its end (--metrics-file).
type jobMetrics struct {
	reg         *prometheus.Registry
	total       prometheus.Gauge
	done        prometheus.Counter
	failed      prometheus.Gauge
	retries     prometheus.Counter
	bytesSent   prometheus.Counter
	shardBytes  prometheus.Counter
	inFlight    *prometheus.GaugeVec     // worker
	encodeTimes *prometheus.HistogramVec // worker

	mu     sync.Mutex // guards chunks
	chunks map[int]*chunkEvents
}

// chunkEvents is what the events told of one chunk.
type chunkEvents struct {
	encodeSeconds float64
	retries       int
	failedOn      []string
}

func newJobMetrics() *jobMetrics {
	const ns, sub = "videoshard", "master"
	m := &jobMetrics{
		reg: prometheus.NewRegistry(),
		total: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "chunks",
			Help: "Chunks of the job, as far as the split knows."}),
		done: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "chunks_done_total",
			Help: "Chunks stored on a worker by this run."}),
		failed: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "chunks_failed",
			Help: "Chunks that failed for good (refused, or out of attempts): the job stops."}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "retries_total",
			Help: "Attempts that failed and were retried."}),
		bytesSent: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "chunk_bytes_sent_total",
			Help: "Bytes of the chunks stored on workers (sent up)."}),
		shardBytes: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "shard_bytes_total",
			Help: "Bytes of the shards the workers made of them (fetched back down)."}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "chunks_in_flight",
			Help: "Chunks sent to a worker and not answered yet."}, []string{"worker"}),
		encodeTimes: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "encode_seconds",
			Help: "Encode time of each stored chunk, as its worker measured it.", Buckets: prometheus.ExponentialBuckets(0.01, 2.5, 12)},
			[]string{"worker"}),
		chunks: map[int]*chunkEvents{},
	}
	m.reg.MustRegister(m.total, m.done, m.failed, m.retries, m.bytesSent, m.shardBytes, m.inFlight, m.encodeTimes)
	return m
}

// event records one dispatch event.
func (m *jobMetrics) event(e master.Event) {
	if e.Total > 0 {
		m.total.Set(float64(e.Total))
	}
	switch e.Kind {
	case master.EventStarted:
		m.inFlight.WithLabelValues(e.Worker).Inc()
	case master.EventRetry:
		m.inFlight.WithLabelValues(e.Worker).Dec()
		m.retries.Inc()
		m.mu.Lock()
		c := m.chunk(e.Chunk)
		c.retries++
		c.failedOn = append(c.failedOn, e.Worker)
		m.mu.Unlock()
	case master.EventDone:
		// The chunk's figures before the count of chunks done: a scrape
		// that sees the count sees what the chunks it counts measured.
		if r := e.Result; r != nil {
			m.bytesSent.Add(float64(r.OriginalSize))
			m.shardBytes.Add(float64(r.EncodedSize))
			m.encodeTimes.WithLabelValues(e.Worker).Observe(r.EncodeSeconds)
			m.mu.Lock()
			m.chunk(e.Chunk).encodeSeconds = r.EncodeSeconds
			m.mu.Unlock()
		}
		m.inFlight.WithLabelValues(e.Worker).Dec()
		m.done.Inc()
	}
}

// chunk returns chunk i's record, made on first use; m.mu is held.
func (m *jobMetrics) chunk(i int) *chunkEvents {
	c, ok := m.chunks[i]
	if !ok {
		c = &chunkEvents{}
		m.chunks[i] = c
	}
	return c
}

// serve serves the metrics on addr until ctx ends; the returned function
// stops it and waits. The address is printed to w, as it may have been
// ":0".
func (m *jobMetrics) serve(ctx context.Context, addr string, w io.Writer) (stop func(), err error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-listen: %w", err)
	}
	fmt.Fprintf(w, "metrics: http://%s/metrics\n", lis.Addr())
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: time.Minute}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(lis)
	}()
	ctx, cancel := context.WithCancel(ctx)
	context.AfterFunc(ctx, func() { srv.Close() })
	return func() {
		cancel()
		<-done
	}, nil
}

// jobReport is the --metrics-file: the job's totals and each chunk's.
type jobReport struct {
	VideoID          string              `json:"video_id"`
	Input            string              `json:"input"`
	Output           string              `json:"output"`
	Error            string              `json:"error,omitempty"`
	Chunks           int                 `json:"chunks"`
	Resumed          int                 `json:"resumed"`
	Reencoded        int                 `json:"reencoded"`
	Retries          int                 `json:"retries"`
	FailedChunk      *int                `json:"failed_chunk,omitempty"`
	InputBytes       int64               `json:"input_bytes"`
	EncodedBytes     int64               `json:"encoded_bytes"`
	OutputBytes      int64               `json:"output_bytes"`
	CompressionRatio float64             `json:"compression_ratio"`
	MediaSeconds     float64             `json:"media_seconds"`
	WallSeconds      float64             `json:"wall_seconds"`
	Speed            float64             `json:"speed"`
	EncodeSeconds    float64             `json:"encode_seconds"`
	PerWorker        map[string]int      `json:"per_worker"`
	Quality          *media.QualityStats `json:"quality,omitempty"`
	ChunkReports     []chunkReport       `json:"chunk_reports"`
}

type chunkReport struct {
	Index  int    `json:"index"`
	Done   bool   `json:"done"`
	Worker string `json:"worker,omitempty"`
	// EncodeSeconds is known for chunks stored by this run only.
	EncodeSeconds *float64 `json:"encode_seconds,omitempty"`
	InputBytes    int64    `json:"input_bytes"`
	EncodedBytes  int64    `json:"encoded_bytes"`
	Attempts      int      `json:"attempts"`
	// Retries and FailedOn are this run's failed attempts and their workers.
	Retries  int                 `json:"retries"`
	FailedOn []string            `json:"failed_on,omitempty"`
	Encoder  string              `json:"encoder,omitempty"`
	Codec    string              `json:"video_codec,omitempty"`
	Quality  *media.QualityStats `json:"quality,omitempty"`
}

// report is the job's report from its summary, its chunk map (state, nil
// when none was saved) and the events seen; jobErr is how it ended.
func (m *jobMetrics) report(sum master.Summary, state *master.JobState, jobErr error) jobReport {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := jobReport{
		VideoID: sum.VideoID, Input: sum.Input, Output: sum.Output,
		Chunks: sum.Chunks, Resumed: sum.Resumed, Reencoded: sum.Reencoded,
		InputBytes: sum.InputSize, EncodedBytes: sum.EncodedSize, OutputBytes: sum.OutputSize,
		CompressionRatio: sum.CompressionRatio, MediaSeconds: sum.MediaSeconds,
		WallSeconds: sum.Wall.Seconds(), Speed: sum.Speed, PerWorker: sum.PerWorker, Quality: sum.Quality,
		ChunkReports: []chunkReport{},
	}
	if jobErr != nil {
		r.Error = describe(jobErr)
	}
	if ce, ok := errors.AsType[*master.ChunkError](jobErr); ok {
		r.FailedChunk = &ce.Index
	}
	if state != nil {
		r.VideoID = state.VideoID
		for _, c := range state.Chunks {
			cr := chunkReport{Index: c.Index, Done: c.Done, Worker: c.Worker, InputBytes: c.Size, EncodedBytes: c.EncodedSize,
				Attempts: c.Attempts, Encoder: c.Encoder, Codec: c.VideoCodec, Quality: c.Quality}
			if ev, ok := m.chunks[c.Index]; ok {
				cr.Retries, cr.FailedOn = ev.retries, ev.failedOn
				if c.Done && ev.encodeSeconds > 0 {
					s := ev.encodeSeconds
					cr.EncodeSeconds = &s
				}
			}
			r.ChunkReports = append(r.ChunkReports, cr)
		}
	}
	for _, c := range m.chunks {
		r.Retries += c.retries
		r.EncodeSeconds += c.encodeSeconds
	}
	return r
}

// writeReport writes r to path atomically: a reader sees the old report
// or the whole new one.
func writeReport(path string, r jobReport) error {
	err := fsutil.WriteFileAtomic(path, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	})
	if err != nil {
		return fmt.Errorf("--metrics-file: %w", err)
	}
	return nil
}
