/** A small client of the Kiln HTTP API (the demo and the end-to-end tests use it). */
export interface ApiResponse<T = unknown> {
  status: number;
  body: T;
}

export interface JobBody {
  jobId: string;
  status: string;
  attempts: number;
  artifact?: { uri: string; sha256: string; sizeBytes: number };
  error?: { code: string; message: string };
  history: Array<{ status: string; at: string; attempt: number; reason?: string; by?: string }>;
  leaseHolder?: string;
  [key: string]: unknown;
}

export const FINISHED = ['SUCCEEDED', 'FAILED', 'CANCELLED', 'TIMED_OUT', 'EXPIRED'];

export class KilnClient {
  constructor(
    readonly apiUrl: string,
    private readonly token: string,
  ) {}

  async request<T = unknown>(
    method: 'GET' | 'POST',
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<ApiResponse<T>> {
    const res = await fetch(`${this.apiUrl}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${this.token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
  }

  submit(job: unknown, idempotencyKey?: string) {
    return this.request<JobBody>(
      'POST',
      '/jobs',
      job,
      idempotencyKey ? { 'idempotency-key': idempotencyKey } : {},
    );
  }

  get(jobId: string) {
    return this.request<JobBody>('GET', `/jobs/${jobId}`);
  }

  cancel(jobId: string) {
    return this.request<JobBody>('POST', `/jobs/${jobId}/cancel`);
  }

  logs(jobId: string, cursor?: string) {
    return this.request<{ text: string; nextCursor: string; complete: boolean; status: string }>(
      'GET',
      `/jobs/${jobId}/logs${cursor ? `?cursor=${encodeURIComponent(cursor)}` : ''}`,
    );
  }

  artifact(jobId: string) {
    return this.request<{ url: string; sha256: string; sizeBytes: number }>('GET', `/jobs/${jobId}/artifact`);
  }

  /** Polls the job until `done` holds or the deadline passes (then throws with the last state). */
  async waitFor(
    jobId: string,
    done: (job: JobBody) => boolean = (j) => FINISHED.includes(j.status),
    deadlineMs = 60_000,
    intervalMs = 100,
  ): Promise<JobBody> {
    const until = Date.now() + deadlineMs;
    let last: JobBody | undefined;
    while (Date.now() < until) {
      const res = await this.get(jobId);
      if (res.status !== 200)
        throw new Error(`GET /jobs/${jobId} → ${res.status} ${JSON.stringify(res.body)}`);
      last = res.body;
      if (done(last)) return last;
      await new Promise((r) => setTimeout(r, intervalMs));
    }
    throw new Error(
      `job ${jobId} did not reach the expected state within ${deadlineMs} ms; last: ${JSON.stringify(last)}`,
    );
  }
}
