#!/bin/sh
# Default command of the tsync test guest: answer marks and probe series until
# powered off. TSYNC_PORT / TSYNC_MARK_PORT come from /init.
if [ -z "$TSYNC_PORT" ]; then
  echo "tsync-guest: no virtio-serial port named tsync.0"
  exit 1
fi
[ -n "$TSYNC_MARK_PORT" ] && tsync-mark "$TSYNC_MARK_PORT" &
exec tsync agent --transport "chardev:$TSYNC_PORT"
