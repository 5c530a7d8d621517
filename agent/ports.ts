import type { Job, Priority } from '../core/job';
import type { RegistrationInput, RegistrationTarget } from '../core/registration';
import type { TransitionPlan } from '../core/transitions';

/** A received queue message; `receipt` is opaque to the agent. */
export interface QueueMessage {
  jobId: string;
  queue: string;
  /** The priority class of the queue it came from. */
  priority: Priority;
  receipt: string;
  receiveCount: number;
}

/** The agent's view of its pool's queues, highest priority first. */
export interface JobQueue {
  /** Waits up to `waitSeconds` for one message from any of the queues, trying them in `order`. */
  receive(
    waitSeconds: number,
    signal?: AbortSignal,
    order?: readonly Priority[],
  ): Promise<QueueMessage | undefined>;
  /** Keeps the message invisible to other agents for `seconds` more. */
  extend(message: QueueMessage, seconds: number): Promise<void>;
  /** Makes the message visible again at once, so another agent takes the job. */
  release(message: QueueMessage): Promise<void>;
  /** Deletes the message: the job no longer needs it. */
  ack(message: QueueMessage): Promise<void>;
}

export interface AgentJobStore {
  get(jobId: string): Promise<Job | undefined>;
  apply(plan: TransitionPlan): Promise<Job>;
  renewLease(jobId: string, holder: string, expiresAt: number): Promise<Job>;
}

export interface StoredArtifact {
  uri: string;
  sha256: string;
  sizeBytes: number;
}

export interface ArtifactStore {
  uploadArtifact(
    jobId: string,
    format: string,
    filePath: string,
    signal?: AbortSignal,
  ): Promise<StoredArtifact>;
  appendLog(jobId: string, attempt: number, seq: number, chunk: Buffer): Promise<void>;
}

/** Starts the register workflow for a job whose artifact is uploaded. */
export interface Registrar {
  readonly target: RegistrationTarget;
  start(executionName: string, input: RegistrationInput): Promise<void>;
}

/**
 * Told whenever the agent's busy slots change (a claim, a finish) and on every heartbeat, so the
 * fleet's scaler knows which instances are busy and which have been idle since when.
 */
export interface AgentStatusReporter {
  report(status: AgentStatus): Promise<void>;
}

export interface AgentStatus {
  agentId: string;
  pool: string;
  busySlots: number;
  slots: number;
  /** When the agent last had a job (now, while busy). */
  lastBusyAt?: string;
  at: string;
  /** False once the agent is shutting down and takes no more work. */
  accepting: boolean;
  /** The jobs it runs now. */
  jobIds: string[];
}
