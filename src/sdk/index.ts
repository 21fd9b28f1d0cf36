// The package's library entry: the agent client (and the error type it throws).
export { createAgentClient, type AgentClient, type AgentClientOptions, type AgentInvokeRequest, type AgentInvokeResponse, type CapabilityInfo } from './agent-client.ts';
export { AivaultError, type ErrorCode } from '../errors.ts';
