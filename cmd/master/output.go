package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	pb "github.com/videoshard/videoshard/proto"
)

// printer writes results as aligned text or, with asJSON, as JSON.
type printer struct {
	w      io.Writer
	asJSON bool
}

// protoJSON renders m with the proto field names and every field present.
func protoJSON(m proto.Message) (json.RawMessage, error) {
	b, err := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode json: %w", err)
	}
	return b, nil
}

// writeJSON writes v indented; proto messages go through protoJSON.
func (p printer) writeJSON(v any) error {
	if m, ok := v.(proto.Message); ok {
		raw, err := protoJSON(m)
		if err != nil {
			return err
		}
		v = raw
	}
	enc := json.NewEncoder(p.w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// field is one line of a key-value listing.
type field struct{ key, value string }

// fields writes one aligned "key: value" line per field, skipping empty values.
func (p printer) fields(fs []field) error {
	tw := tabwriter.NewWriter(p.w, 0, 0, 2, ' ', 0)
	for _, f := range fs {
		if f.value != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", f.key, f.value)
		}
	}
	return tw.Flush()
}

// table writes a header row and rows in aligned columns.
func (p printer) table(header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(p.w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

func (p printer) health(h *pb.HealthCheckResponse) error {
	if p.asJSON {
		return p.writeJSON(h)
	}
	tasks := strconv.Itoa(int(h.GetActiveTasks()))
	if m := h.GetMaxConcurrentTasks(); m > 0 {
		tasks += " of " + strconv.Itoa(int(m))
	}
	encoder := h.GetEncoder()
	if c := h.GetVideoCodec(); c != "" && c != encoder {
		encoder = strings.TrimPrefix(encoder+", "+c, ", ")
	}
	return p.fields([]field{
		{"worker", h.GetWorkerId()},
		{"healthy", yesNo(h.GetIsHealthy())},
		{"message", h.GetMessage()},
		{"encoder", encoder},
		{"cpu", fmt.Sprintf("%.1f%%", h.GetCpuUtilization())},
		{"memory", bytesIfSet(h.GetMemoryUsageBytes())},
		{"tasks", tasks},
		{"max unary chunk", bytesIfSet(h.GetMaxUnaryChunkBytes())},
		{"max chunk", bytesIfSet(h.GetMaxChunkBytes())},
		{"storage free", bytesIfSet(h.GetStorageFreeBytes())},
	})
}

func (p printer) processed(r *pb.ProcessChunkResponse) error {
	if p.asJSON {
		return p.writeJSON(r)
	}
	fs := []field{
		{"worker", r.GetWorkerId()},
		{"location", r.GetShardLocation()},
		{"original", byteCount(r.GetOriginalSize())},
		{"encoded", byteCount(r.GetEncodedSize())},
		{"sha256", r.GetChecksumSha256()},
	}
	if m := r.GetMetadata(); m != nil {
		fs = append(fs, mediaFields(m)...)
	}
	fs = append(fs, field{"message", r.GetMessage()})
	return p.fields(fs)
}

func (p printer) list(r *pb.ListShardsResponse) error {
	if p.asJSON {
		return p.writeJSON(r)
	}
	var rows [][]string
	for _, v := range r.GetVideos() {
		for _, c := range v.GetChunks() {
			rows = append(rows, []string{
				v.GetVideoId(),
				strconv.Itoa(int(c.GetChunkIndex())),
				byteCount(c.GetSizeBytes()),
				short(c.GetChecksumSha256()),
				c.GetShardLocation(),
			})
		}
	}
	return p.table([]string{"VIDEO", "CHUNK", "SIZE", "SHA256", "LOCATION"}, rows)
}

func (p printer) metadata(r *pb.GetVideoMetadataResponse) error {
	if p.asJSON {
		return p.writeJSON(r)
	}
	var rows [][]string
	for _, m := range r.GetChunksMetadata() {
		rows = append(rows, []string{
			strconv.Itoa(int(m.GetChunkIndex())),
			byteCount(m.GetOriginalSize()),
			byteCount(m.GetEncodedSize()),
			fmt.Sprintf("%.3f", m.GetCompressionRatio()),
			dash(m.GetVideoCodec()),
			dash(resolution(m)),
			dash(seconds(m.GetDurationSeconds())),
			dash(seconds(m.GetEncodeTimeSeconds())),
			dash(psnrRange(m)),
			dash(ssimRange(m)),
			dash(short(m.GetChecksumSha256())),
			dash(m.GetTimestamp()),
		})
	}
	return p.table([]string{"CHUNK", "ORIGINAL", "ENCODED", "RATIO", "CODEC", "SIZE", "DURATION", "ENCODE TIME",
		"PSNR MIN/MEAN", "SSIM MIN/MEAN", "SHA256", "TIMESTAMP"}, rows)
}

// shardResult is what get-shard prints.
type shardResult struct {
	Output   string          `json:"output"`
	Bytes    int64           `json:"bytes"`
	Metadata json.RawMessage `json:"metadata"`
}

func (p printer) shard(path string, n int64, m *pb.ChunkMetadata) error {
	if p.asJSON {
		raw, err := protoJSON(m)
		if err != nil {
			return err
		}
		return p.writeJSON(shardResult{Output: path, Bytes: n, Metadata: raw})
	}
	fs := []field{
		{"output", path},
		{"bytes", strconv.FormatInt(n, 10)},
		{"video", m.GetVideoId()},
		{"chunk", strconv.Itoa(int(m.GetChunkIndex()))},
		{"worker", m.GetWorkerId()},
		{"location", m.GetShardLocation()},
		{"original", byteCount(m.GetOriginalSize())},
		{"encoded", byteCount(m.GetEncodedSize())},
		{"sha256", m.GetChecksumSha256()},
	}
	fs = append(fs, mediaFields(m)...)
	fs = append(fs, field{"timestamp", m.GetTimestamp()})
	return p.fields(fs)
}

// mediaFields describes the encoded media in a chunk's metadata.
func mediaFields(m *pb.ChunkMetadata) []field {
	ratio := ""
	if m.GetCompressionRatio() != 0 {
		ratio = fmt.Sprintf("%.3f", m.GetCompressionRatio())
	}
	frames := ""
	if m.GetFrameCount() > 0 {
		frames = strconv.FormatInt(m.GetFrameCount(), 10)
	}
	return []field{
		{"ratio", ratio},
		{"encoder", m.GetEncoder()},
		{"video codec", m.GetVideoCodec()},
		{"audio codec", m.GetAudioCodec()},
		{"container", m.GetContainer()},
		{"size", resolution(m)},
		{"duration", seconds(m.GetDurationSeconds())},
		{"frames", frames},
		{"encode time", seconds(m.GetEncodeTimeSeconds())},
		{"quality", pictureQuality(m)},
	}
}

// pictureQuality describes the quality the worker measured of a shard
// against its chunk; "" when it measured none.
func pictureQuality(m *pb.ChunkMetadata) string {
	if m.GetQualityFrames() <= 0 {
		return ""
	}
	return fmt.Sprintf("PSNR %s mean, %s worst; %s; %d pictures compared",
		dB(m.GetPsnrMean()), dB(m.GetPsnrMin()), ssim(m.GetSsimMean(), m.GetSsimMin()), m.GetQualityFrames())
}

// psnrRange is a table cell: the worst and mean PSNR, "inf" for identical
// pictures; "" when not measured.
func psnrRange(m *pb.ChunkMetadata) string {
	if m.GetQualityFrames() <= 0 {
		return ""
	}
	cell := func(x float64) string {
		if math.IsInf(x, 1) {
			return "inf"
		}
		return fmt.Sprintf("%.2f", x)
	}
	return cell(m.GetPsnrMin()) + "/" + cell(m.GetPsnrMean()) + " dB"
}

// ssimRange is a table cell: the worst and mean SSIM; "" when not measured.
func ssimRange(m *pb.ChunkMetadata) string {
	if m.GetQualityFrames() <= 0 {
		return ""
	}
	return fmt.Sprintf("%.4f/%.4f", m.GetSsimMin(), m.GetSsimMean())
}

// byteCount renders n bytes for people: "512 B", "1.5 MiB".
func byteCount(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func bytesIfSet(n int64) string {
	if n <= 0 {
		return ""
	}
	return byteCount(n)
}

func resolution(m *pb.ChunkMetadata) string {
	if m.GetWidth() <= 0 || m.GetHeight() <= 0 {
		return ""
	}
	return fmt.Sprintf("%dx%d", m.GetWidth(), m.GetHeight())
}

func seconds(s float64) string {
	if s <= 0 {
		return ""
	}
	return fmt.Sprintf("%.2fs", s)
}

// short abbreviates a checksum for a table column.
func short(sum string) string {
	if len(sum) > 12 {
		return sum[:12]
	}
	return sum
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
