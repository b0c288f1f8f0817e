/**
 * The broker's Workers: jobs on clients' directory fds run there, one job per
 * Worker at a time. A Worker that overruns its job's time is terminated and
 * replaced (its thread may stay blocked in the kernel, as on a FUSE server
 * that never answers: it stalls that job alone).
 *
 * @module
 */

import { MountError } from "../../ffi/mount_error.ts";
import { close } from "../../ffi/syscalls.ts";
import type { Answer, Job } from "./worker.ts";

const WORKER_URL = new URL("./worker.ts", import.meta.url);

/** A job without its id, which the pool assigns. */
export type JobRequest = Job extends infer J ? J extends Job ? Omit<J, "id"> : never : never;

interface Slot {
  worker: Worker;
  resolve?: (answer: Answer) => void;
}

/** A pool of Workers for the broker's filesystem calls. */
export class WorkerPool {
  readonly #idle: Slot[] = [];
  readonly #busy = new Set<Slot>();
  readonly #max: number;
  #next = 1;
  #closed = false;

  /**
   * An empty pool.
   *
   * @param max The most jobs at once; one more fails with EAGAIN.
   * @param warm Workers to start at once.
   */
  constructor(max: number = 32, warm: number = 1) {
    this.#max = max;
    for (let i = 0; i < warm; i++) this.#idle.push(this.#spawn());
  }

  /** Workers running a job now. */
  get busy(): number {
    return this.#busy.size;
  }

  /**
   * Runs a job on a Worker.
   *
   * @param request The job.
   * @param signal Gives up on it: the Worker is terminated, a late fd closed.
   * @returns The Worker's answer.
   * @throws {MountError} The job's own failure, with its errno; EAGAIN when
   * all Workers are busy; ETIMEDOUT when `signal` aborts.
   */
  async run(request: JobRequest, signal: AbortSignal): Promise<Answer & { ok: true }> {
    if (this.#closed) throw new Error("The worker pool is closed");
    if (this.#busy.size >= this.#max) {
      throw new MountError("broker", { errno: 11, detail: `${this.#max} jobs running already` });
    }
    signal.throwIfAborted();
    const slot = this.#idle.pop() ?? this.#spawn();
    this.#busy.add(slot);
    const id = this.#next++;
    let abandon: () => void = () => {};
    try {
      const answer = await new Promise<Answer>((resolve, reject) => {
        slot.resolve = resolve;
        abandon = () => reject(new MountError("broker", { errno: 110, detail: "the job overran" }));
        signal.addEventListener("abort", abandon, { once: true });
        slot.worker.postMessage({ ...request, id } as Job);
      });
      this.#busy.delete(slot);
      slot.resolve = undefined;
      if (this.#closed) slot.worker.terminate();
      else this.#idle.push(slot);
      if (!answer.ok) {
        throw new MountError(answer.op ?? request.op, {
          errno: answer.errno,
          detail: answer.errno === undefined ? answer.message : undefined,
        });
      }
      return answer;
    } catch (error) {
      if (this.#busy.delete(slot)) {
        // Abandoned while running: the Worker may be stuck; an fd it makes
        // later is closed when its answer comes.
        slot.resolve = (late) => {
          if (late.ok && "fd" in late) close(late.fd);
          slot.worker.terminate();
        };
        slot.worker.terminate();
      }
      throw error;
    } finally {
      signal.removeEventListener("abort", abandon);
    }
  }

  /** Terminates the idle Workers; busy ones end with their job. */
  close(): void {
    this.#closed = true;
    for (const slot of this.#idle.splice(0)) slot.worker.terminate();
  }

  #spawn(): Slot {
    const slot: Slot = { worker: new Worker(WORKER_URL, { type: "module" }) };
    slot.worker.onmessage = (event: MessageEvent<Answer>) => slot.resolve?.(event.data);
    slot.worker.onerror = (event) => {
      event.preventDefault();
      slot.resolve?.({ id: 0, ok: false, message: `The broker's Worker failed: ${event.message}` });
    };
    return slot;
  }
}
