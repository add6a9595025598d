/** Placeholder: the api layer's handler lands with its issue. */
export const handler = async (): Promise<void> => {
  throw new Error('the api handler is not implemented yet');
};
