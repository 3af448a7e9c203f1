package engine

import (
	"errors"
	"time"
)

// AdvanceWatermark moves a source's watermark to wm, if that is newer, and
// forwards it at once on every port. It is for a source whose watermark
// travels in-band with its records (a scale-out worker reading an ingest's
// watermark markers), so the records it emits must not move the watermark
// themselves: such a node sets a MaxOutOfOrderness far beyond its data's
// span.
func (o *Output) AdvanceWatermark(wm int64) error {
	if !o.source {
		return errors.New("AdvanceWatermark called on a node that is not a source")
	}
	if o.mu != nil {
		o.mu.Lock()
		defer o.mu.Unlock()
	}
	if o.closed || wm <= o.wm {
		return nil
	}
	o.stats.Watermark.Store(wm)
	o.stats.WatermarkAt.Store(time.Now().UnixNano())
	return o.advance(wm)
}
