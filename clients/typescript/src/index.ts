export { RecorderClient } from "./client.js";
export type {
  ErrorBody,
  RecorderClientOptions,
  RecordingType,
  StartOptions,
  StartOutcome,
  StartRequest,
  StartResponse,
  StartStatus,
} from "./client.js";
export type { components, paths } from "./generated/openapi.js";
