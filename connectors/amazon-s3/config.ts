/** The connection configuration, as connection.schema.json describes it. */
export interface S3Config {
  awsAccessKey: string;
  awsSecretKey: string;
  region: string;
  bucket: string;
  multipartThresholdMb?: number;
  proxyUser?: string;
  proxyPassword?: string;
  endpoint?: string;
  forcePathStyle?: boolean;
}
