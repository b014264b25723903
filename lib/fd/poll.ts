/**
 * Readiness of a file descriptor from Node's own event loop: a libuv
 * `uv_poll_t` (libuv's public API, which Node exports to native addons)
 * driven through koffi. The callback runs on the main thread in the loop's
 * poll phase, like any socket callback, so an fd-carrying connection costs
 * no thread hop. Main thread only (`uv_default_loop`). Import lazily, as
 * `./libc.js`.
 */
import koffi from 'koffi';

export const READABLE = 1;
export const WRITABLE = 2;
export const DISCONNECT = 4;
const UV_POLL = 8;

const libc = koffi.load('libc.so.6');
const node = koffi.load(null);
const malloc = libc.func('void *malloc(size_t size)');
const free = libc.func('void free(void *pointer)');
const uvDefaultLoop = node.func('void *uv_default_loop()');
const uvHandleSize = node.func('size_t uv_handle_size(int type)');
const uvPollInit = node.func('int uv_poll_init(void *loop, void *handle, int fd)');
koffi.proto('void qmpx_uv_poll_cb(void *handle, int status, int events)');
koffi.proto('void qmpx_uv_close_cb(void *handle)');
const uvPollStart = node.func('int uv_poll_start(void *handle, int events, qmpx_uv_poll_cb *callback)');
const uvPollStop = node.func('int uv_poll_stop(void *handle)');
const uvClose = node.func('void uv_close(void *handle, qmpx_uv_close_cb *callback)');
const uvRef = node.func('void uv_ref(void *handle)');
const uvUnref = node.func('void uv_unref(void *handle)');
const uvStrerror = node.func('const char *uv_strerror(int error)');

const pollSize = Number(uvHandleSize(UV_POLL));
const live = new Map<bigint, FdPoll>();

const onPoll = koffi.register((handle: unknown, status: number, events: number) => {
  live.get(koffi.address(handle))?.dispatch(status, events);
}, koffi.pointer('qmpx_uv_poll_cb'));

const onClosed = koffi.register((handle: unknown) => {
  free(handle);
}, koffi.pointer('qmpx_uv_close_cb'));

/** What a poll reports: the events that are ready, or libuv's error text. */
export type PollListener = (events: number, error?: string) => void;

/**
 * Watches one fd. `start(events)` replaces the watched set; the listener is
 * called while any of them is ready (level-triggered: read or write until
 * the call would block, or stop). `close()` stops for good; the fd itself
 * stays open, it is the caller's.
 */
export class FdPoll {
  readonly #handle: unknown;
  readonly #key: bigint;
  #closed = false;

  constructor(
    readonly fd: number,
    private readonly listener: PollListener,
  ) {
    this.#handle = malloc(pollSize);
    this.#key = koffi.address(this.#handle);
    const result = uvPollInit(uvDefaultLoop(), this.#handle, fd);
    if (result < 0) {
      free(this.#handle);
      throw new Error(`uv_poll_init(${fd}) failed: ${uvStrerror(result)}`);
    }
    live.set(this.#key, this);
  }

  start(events: number): void {
    if (this.#closed) return;
    const result = uvPollStart(this.#handle, events, onPoll);
    if (result < 0) throw new Error(`uv_poll_start(${this.fd}) failed: ${uvStrerror(result)}`);
  }

  stop(): void {
    if (!this.#closed) uvPollStop(this.#handle);
  }

  /** Lets the process exit while this poll is the only thing left (as `socket.unref()`). */
  unref(): void {
    if (!this.#closed) uvUnref(this.#handle);
  }

  ref(): void {
    if (!this.#closed) uvRef(this.#handle);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    live.delete(this.#key);
    uvClose(this.#handle, onClosed);
  }

  /** @internal called from libuv's callback. */
  dispatch(status: number, events: number): void {
    if (this.#closed) return;
    if (status < 0) this.listener(0, String(uvStrerror(status)));
    else this.listener(events);
  }
}
