import {
  DescribeExecutionCommand,
  ExecutionAlreadyExists,
  ExecutionDoesNotExist,
  type SFNClient,
  StartExecutionCommand,
} from '@aws-sdk/client-sfn';
import type { ExecutionStatus, RegistrationInput } from '../core/registration';

/** Starts and inspects executions of the register state machine. */
export class SfnRegistrations {
  constructor(
    private readonly sfn: SFNClient,
    private readonly stateMachineArn: string,
  ) {}

  executionArn(name: string): string {
    return `${this.stateMachineArn.replace(':stateMachine:', ':execution:')}:${name}`;
  }

  /** Idempotent: an execution of that name that already exists counts as started. */
  async start(name: string, input: RegistrationInput): Promise<void> {
    try {
      await this.sfn.send(
        new StartExecutionCommand({
          stateMachineArn: this.stateMachineArn,
          name,
          input: JSON.stringify(input),
        }),
      );
    } catch (error) {
      if (!(error instanceof ExecutionAlreadyExists || (error as Error).name === 'ExecutionAlreadyExists'))
        throw error;
    }
  }

  async status(name: string): Promise<ExecutionStatus> {
    return this.statusOfArn(this.executionArn(name));
  }

  async statusOfArn(executionArn: string): Promise<ExecutionStatus> {
    try {
      const out = await this.sfn.send(new DescribeExecutionCommand({ executionArn }));
      return (out.status ?? 'RUNNING') as ExecutionStatus;
    } catch (error) {
      if (error instanceof ExecutionDoesNotExist || (error as Error).name === 'ExecutionDoesNotExist')
        return 'MISSING';
      throw error;
    }
  }
}
