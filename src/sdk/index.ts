// The package's library entry: the agent and owner clients (and the error type they throw).
export { createAgentClient, type AgentClient, type AgentClientOptions, type AgentInvokeRequest, type AgentInvokeResponse, type CapabilityInfo } from './agent-client.ts';
export { createOwnerClient, type OwnerClient, type OwnerClientOptions } from './owner-client.ts';
export { AivaultError, type ErrorCode } from '../errors.ts';
